package etcdlock

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/guardkit/guard/instance"
)

// A forced stop breaks the lock: it revokes the holder's lease at once. The
// holder, if it can still reach etcd, sees its key deleted and kills its
// job's tree at once; if it cannot, only its own deadline stops the tree,
// up to one TTL later. So before revoking, a forced stop puts Key
// req/delay under a lease of the holder's TTL (Chubby's lock-delay): no
// contender takes the lock while that key exists.

func (l *Locker) delayKey() string { return l.opts.Key + "req/delay" }

// ForceRelease breaks the lock held under token: it makes the next holder
// wait one TTL of the holder's lease, then revokes that lease. It returns
// how long the take-over delay runs. An error says the lock is no longer
// held under token, or etcd could not be reached (ErrUnavailable).
func (l *Locker) ForceRelease(ctx context.Context, token uint64) (time.Duration, error) {
	q, _, err := l.snapshot(ctx)
	if err != nil {
		return 0, err
	}
	if len(q) == 0 || uint64(q[0].rev) != token {
		return 0, fmt.Errorf("%s: no longer held under token %d", l.opts.Key, token)
	}
	rctx, cancel := l.request(ctx)
	defer cancel()
	ttl := int64(l.opts.ttl() / time.Second)
	if resp, err := l.cli.TimeToLive(rctx, q[0].lease); err == nil && resp.GrantedTTL > 0 {
		ttl = resp.GrantedTTL
	}
	g, err := l.cli.Grant(rctx, ttl)
	if err != nil {
		return 0, unavailable("grant", err)
	}
	if _, err := l.cli.Put(rctx, l.delayKey(), fmt.Sprint(token), clientv3.WithLease(g.ID)); err != nil {
		return 0, unavailable("put "+l.delayKey(), err)
	}
	if _, err := l.cli.Revoke(rctx, q[0].lease); err != nil {
		return 0, unavailable("revoke the holder's lease", err)
	}
	return time.Duration(ttl) * time.Second, nil
}

// waitDelay waits, from revision rev, until the take-over delay key is
// gone. With wait false it returns a *instance.HeldError at once.
func (le *Lease) waitDelay(ctx context.Context, wait bool, rev int64) error {
	if !wait {
		return &instance.HeldError{Path: le.lock.opts.Key, Holder: &instance.Holder{Path: le.lock.opts.Key,
			State: instance.Held, Reason: "a forced stop's take-over delay runs (the previous holder's tree may still be dying)"}}
	}
	if err := le.waitDelete(ctx, le.lock.delayKey(), rev); err != nil && ctx.Err() != nil {
		return err
	}
	return nil
}
