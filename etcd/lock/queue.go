package etcdlock

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/guardkit/guard/instance"
)

// contender is one key of a lock's queue.
type contender struct {
	key   string
	lease clientv3.LeaseID
	rev   int64 // create revision: the fencing token it holds or will hold
	value []byte
}

// contenderKey is the key a contender holding lease id puts.
func (l *Locker) contenderKey(id clientv3.LeaseID) string {
	return fmt.Sprintf("%s%016x", l.opts.Key, uint64(id))
}

// lastKey keeps the record of the last holder, under no lease.
func (l *Locker) lastKey() string { return l.opts.Key + "last" }

// queueRange gets the contenders' keys: Key + 16 hex digits all sort in
// [Key+"0", Key+"g"), and Key + "last" sorts after.
func (l *Locker) queueRange(extra ...clientv3.OpOption) clientv3.Op {
	opts := append([]clientv3.OpOption{clientv3.WithRange(l.opts.Key + "g"),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend)}, extra...)
	return clientv3.OpGet(l.opts.Key+"0", opts...)
}

// contenders keeps the keys that are contenders' (prefix and 16 hex digits),
// in queue order.
func (l *Locker) contenders(kvs []*mvccpb.KeyValue) []*contender {
	var q []*contender
	for _, kv := range kvs {
		k := string(kv.Key)
		hex := k[len(l.opts.Key):]
		id, err := strconv.ParseUint(hex, 16, 64)
		if len(hex) != 16 || err != nil {
			continue
		}
		q = append(q, &contender{key: k, lease: clientv3.LeaseID(id), rev: kv.CreateRevision, value: kv.Value})
	}
	slices.SortFunc(q, func(a, b *contender) int { return cmp.Compare(a.rev, b.rev) })
	return q
}

// enter grants a lease, starts renewing it and puts this contender's key
// under it. It returns the lease and the first contender in the queue (the
// holder, possibly this one).
func (l *Locker) enter(ctx context.Context) (*Lease, *contender, error) {
	rec, err := newRecord(l.opts)
	if err != nil {
		return nil, nil, err
	}
	rctx, cancel := l.request(ctx)
	defer cancel()
	sent := boottime()
	g, err := l.cli.Grant(rctx, int64(l.opts.ttl()/time.Second))
	if err != nil {
		return nil, nil, unavailable("grant etcd lease", err)
	}
	le := newLease(l, g.ID, sent, time.Duration(g.TTL)*time.Second, rec)
	resp, err := l.cli.Txn(rctx).If(clientv3.Compare(clientv3.CreateRevision(le.key), "=", 0)).
		Then(clientv3.OpPut(le.key, string(rec.Marshal()), clientv3.WithLease(g.ID)), l.queueRange()).
		Commit()
	if err == nil && !resp.Succeeded {
		err = fmt.Errorf("key %s exists already", le.key)
	}
	if err != nil {
		le.abandon()
		return nil, nil, unavailable("put "+le.key, err)
	}
	le.rev = resp.Header.Revision
	le.watchOwn()
	q := l.contenders(resp.Responses[1].GetResponseRange().Kvs)
	if len(q) == 0 {
		le.abandon()
		return nil, nil, fmt.Errorf("%s: own key not found after putting it", le.key)
	}
	return le, q[0], nil
}

// waitTurn waits until no contender before this one remains: it watches the
// deletion of the key just before its own (from the revision after the look),
// then looks again. It returns errLostWaiting when the lease is lost; while
// etcd cannot be reached it keeps trying until then.
func (le *Lease) waitTurn(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-le.d.lost:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		pred, rev, err := le.predecessor(ctx)
		if err == nil && pred == nil {
			return nil
		}
		if err == nil {
			err = le.waitDelete(ctx, pred.key, rev+1)
		}
		if le.d.isLost() {
			return errLostWaiting
		}
		if errors.Is(err, ErrUnavailable) && ctx.Err() == nil {
			// etcd is away: keep the place in the queue while the
			// lease lasts (renewal goes on), and look again.
			select {
			case <-time.After(retryWait):
			case <-ctx.Done():
			}
			continue
		}
		if err != nil {
			return err
		}
	}
}

// retryWait is how long a waiter that could not reach etcd waits before
// looking again.
const retryWait = 250 * time.Millisecond

// predecessor returns the contender just before this one (nil if none) and
// the revision it was seen at, checking in the same transaction that this
// contender's key still exists.
func (le *Lease) predecessor(ctx context.Context) (*contender, int64, error) {
	rctx, cancel := le.lock.request(ctx)
	defer cancel()
	resp, err := le.lock.cli.Txn(rctx).If(le.own()).
		Then(le.lock.queueRange(clientv3.WithMaxCreateRev(le.rev-1), clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return nil, 0, unavailable("get "+le.lock.opts.Key, err)
	}
	if !resp.Succeeded {
		le.d.lose(ErrRevoked)
		return nil, 0, errLostWaiting
	}
	q := le.lock.contenders(resp.Responses[0].GetResponseRange().Kvs)
	if len(q) == 0 {
		return nil, resp.Header.Revision, nil
	}
	return q[len(q)-1], resp.Header.Revision, nil
}

// waitDelete returns when key is deleted at or after revision rev, or when
// the watch ends (the caller looks again).
func (le *Lease) waitDelete(ctx context.Context, key string, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for wr := range le.lock.cli.Watch(wctx, key, clientv3.WithRev(rev), clientv3.WithFilterPut()) {
		if wr.Err() != nil {
			return nil
		}
		for _, ev := range wr.Events {
			if ev.Type == mvccpb.DELETE {
				return nil
			}
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("watch " + key + ": closed")
}

// stamp writes rec, the holder's stamped record, into the holder's key and
// the last key, in the background; stamped is closed when it is done.
func (le *Lease) stamp(rec instance.Record) {
	b := string(rec.Marshal())
	le.wg.Add(1)
	go func() {
		defer le.wg.Done()
		defer close(le.stamped)
		rctx, cancel := le.lock.request(le.ctx)
		defer cancel()
		resp, err := le.lock.cli.Txn(rctx).If(le.own()).
			Then(clientv3.OpPut(le.key, b, clientv3.WithLease(le.id)), clientv3.OpPut(le.lock.lastKey(), b)).
			Commit()
		if err == nil && !resp.Succeeded && le.ctx.Err() == nil {
			le.d.lose(ErrRevoked)
		}
	}()
}

// own compares this contender's key to the one it put.
func (le *Lease) own() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(le.key), "=", le.rev)
}

// take confirms, in one linearizable read-only transaction, that this
// contender's key is still its own and that no forced stop's take-over
// delay runs; if one does, take waits it out (wait) or returns a
// *instance.HeldError. It then starts the lease's deadlines and stamps the
// record with the token and the acquisition time, in the holder's key and
// the last key. A TryLock stamps before it returns; a waiter (a hot
// standby, whose hand-over speed counts) stamps in the background, off the
// hand-over's path: if its lease ends within the few milliseconds before the
// stamp lands, the last record still names the previous, released holder.
// Release waits for the stamp before it writes the released record.
func (le *Lease) take(ctx context.Context, wait bool) error {
	rec := le.rec
	rec.Token, rec.Acquired = uint64(le.rev), time.Now()
	delay := le.lock.delayKey()
	for {
		rctx, cancel := le.lock.request(ctx)
		resp, err := le.lock.cli.Txn(rctx).If(le.own(), clientv3.Compare(clientv3.CreateRevision(delay), "=", 0)).
			Then(clientv3.OpGet(le.lock.lastKey())).
			Else(clientv3.OpGet(le.key, clientv3.WithKeysOnly())).
			Commit()
		cancel()
		if err != nil {
			return unavailable("get "+le.key, err)
		}
		if resp.Succeeded {
			rec.LastSuccess = lastSuccess(resp.Responses[0].GetResponseRange().Kvs)
			break
		}
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) == 0 || kvs[0].CreateRevision != le.rev {
			le.d.lose(ErrRevoked)
			return errLostWaiting
		}
		if err := le.waitDelay(ctx, wait, resp.Header.Revision+1); err != nil {
			return err
		}
	}
	le.stamp(rec)
	if !wait {
		<-le.stamped
	}
	le.rec = rec
	le.d.arm(boottime())
	if le.d.isLost() {
		return errLostWaiting
	}
	le.watchRequests()
	return nil
}

// lastSuccess is the last success kept in the last record (for guard run
// --min-interval), or the zero time if there is none or the record does not
// parse (strictly: instance.ParseRecord): the job then runs.
func lastSuccess(kvs []*mvccpb.KeyValue) time.Time {
	if len(kvs) == 0 {
		return time.Time{}
	}
	rec, err := instance.ParseRecord(kvs[0].Value)
	if err != nil {
		return time.Time{}
	}
	return rec.LastSuccess
}
