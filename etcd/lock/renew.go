package etcdlock

import (
	"context"
	"errors"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// tick is how often the deadlines are compared with CLOCK_BOOTTIME. Go's
// timers run on CLOCK_MONOTONIC, which stops while the machine is
// suspended: a timer set to fire at the deadline would fire that much
// awake time later, long after the server (whose clock did not stop) gave
// the lock away. A short ticker, which also stops during suspend, fires
// within one tick of the machine waking, and each tick reads BOOTTIME, so a
// deadline that passed during suspend is seen at once. The tick's
// granularity is part of what Options.Margin covers.
const tick = 100 * time.Millisecond

// watchClock checks the deadlines every tick until the lease stops.
func (le *Lease) watchClock() {
	defer le.wg.Done()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		le.d.check(boottime())
		select {
		case <-t.C:
		case <-le.ctx.Done():
			return
		}
	}
}

// renew sends one keepalive every TTL/3, each on its own stream
// (KeepAliveOnce), recording its send time S before the request leaves.
// An answer with TTL > 0 moves the deadline to S + TTL*(1-2*Rho) - Margin;
// an answer with TTL <= 0 (the lease is gone) closes Lost at once. A
// request that gets no answer within TTL/3 is abandoned and the next one
// sent: a late answer to an abandoned request is never counted. It does
// not use clientv3's KeepAlive, whose deadline bookkeeping starts at the
// receive time of each answer.
func (le *Lease) renew() {
	defer le.wg.Done()
	le.d.mu.Lock()
	every := le.d.ttl / 3
	le.d.mu.Unlock()
	next := le.d.sent + every
	for {
		if !le.sleepUntil(next) {
			return
		}
		sent := boottime()
		ctx, cancel := context.WithTimeout(le.ctx, every)
		resp, err := le.lock.keepAliveOnce(ctx, le.id)
		cancel()
		switch {
		case le.ctx.Err() != nil:
			return
		case errors.Is(err, rpctypes.ErrLeaseNotFound) || (err == nil && resp.TTL <= 0):
			le.d.lose(ErrExpired)
			return
		case err != nil:
			le.report(sent, err)
			// Try again soon, not in a tight loop when refused at once.
			next = max(boottime(), sent+min(every/4, 250*time.Millisecond))
		default:
			le.d.acked(sent, time.Duration(resp.TTL)*time.Second)
			le.report(sent, nil)
			next = sent + every
		}
	}
}

// sleepUntil waits until BOOTTIME reaches t, or the lease stops (false).
func (le *Lease) sleepUntil(t time.Duration) bool {
	for {
		d := t - boottime()
		if d <= 0 {
			return true
		}
		// Sleep in ticks, re-reading BOOTTIME, so a suspend does not
		// delay the keepalive by its length.
		timer := time.NewTimer(min(d, tick))
		select {
		case <-timer.C:
		case <-le.ctx.Done():
			timer.Stop()
			return false
		}
	}
}

// watchOwn closes Lost at once when the contender's key is deleted: the
// lease was revoked (an operator's etcdctl lease revoke), or the key
// removed. A watch that ends with an error (compaction, a lost leader) is
// resumed after checking that the key is still there.
func (le *Lease) watchOwn() {
	le.wg.Add(1)
	go func() {
		defer le.wg.Done()
		from := le.rev + 1
		for le.ctx.Err() == nil {
			if le.watchOwnFrom(from) {
				le.d.lose(ErrRevoked)
				return
			}
			rev, ok := le.stillOwn()
			if !ok {
				if le.ctx.Err() == nil {
					le.d.lose(ErrRevoked)
				}
				return
			}
			if rev > 0 {
				from = rev + 1
			}
		}
	}()
}

// watchOwnFrom watches the contender's key from rev and reports whether it
// was deleted; false when the watch ended for another reason.
func (le *Lease) watchOwnFrom(rev int64) bool {
	for wr := range le.lock.cli.Watch(le.ctx, le.key, clientv3.WithRev(rev), clientv3.WithFilterPut()) {
		if wr.Err() != nil {
			return false
		}
		for _, ev := range wr.Events {
			if ev.Type == mvccpb.DELETE {
				return true
			}
		}
	}
	return false
}

// stillOwn checks that the key is still the one this contender put. It
// returns the revision it looked at (0 if the look failed, which is not
// proof of anything: the deadlines deal with an unreachable etcd) and false
// when the key is gone or replaced.
func (le *Lease) stillOwn() (int64, bool) {
	ctx, cancel := le.lock.request(le.ctx)
	defer cancel()
	resp, err := le.lock.cli.Get(ctx, le.key)
	if err != nil {
		if le.ctx.Err() == nil {
			le.sleepUntil(boottime() + tick*5)
		}
		return 0, true
	}
	gone := len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != le.rev
	return resp.Header.Revision, !gone
}
