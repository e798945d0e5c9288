package etcdlock

import (
	"context"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/guardkit/guard/instance"
)

// Contender is one process in a lock's queue.
type Contender struct {
	Key   string
	Lease clientv3.LeaseID
	// Revision is the create revision of Key: the fencing token it holds
	// (the first contender) or will hold.
	Revision int64
	// Record is what the contender wrote (for a waiter, Acquired is when it
	// started waiting); nil when the value is not a guard record.
	Record *instance.Record
}

// Queue returns the lock's contenders in order: the holder first, then the
// waiters in the order they will get the lock. It is a snapshot, stale as
// soon as it is returned.
func (l *Locker) Queue(ctx context.Context) ([]Contender, error) {
	q, _, err := l.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Contender, len(q))
	for i, c := range q {
		out[i] = Contender{Key: c.key, Lease: c.lease, Revision: c.rev, Record: c.record()}
	}
	return out, nil
}

// Inspect implements instance.Locker: who holds the lock, read in one
// transaction without disturbing holder or waiters. Held: Record is the
// holder's, Reason names its host, lease and the number of waiters; the
// holder is never Verified (its process is on some host, not proven here).
// Free: no holder, and either never held or the last holder released it
// cleanly (Record says who and when). Stale: no holder, and the last holder
// never released it: its lease ran out (a crash, a partition, a revocation).
// Errors reaching etcd match ErrUnavailable.
func (l *Locker) Inspect(ctx context.Context) (*instance.Holder, error) {
	q, last, err := l.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	h := l.holderOf(q, last)
	if h.State == instance.Held {
		rctx, cancel := l.request(ctx)
		defer cancel()
		if ttl, err := l.cli.TimeToLive(rctx, q[0].lease); err == nil && ttl.TTL > 0 {
			h.Reason += fmt.Sprintf("; lease TTL left %ds of %ds", ttl.TTL, ttl.GrantedTTL)
		}
	}
	return h, nil
}

// snapshot reads the queue and the last record at one revision.
func (l *Locker) snapshot(ctx context.Context) ([]*contender, []byte, error) {
	rctx, cancel := l.request(ctx)
	defer cancel()
	resp, err := l.cli.Txn(rctx).Then(l.queueRange(), clientv3.OpGet(l.lastKey())).Commit()
	if err != nil {
		return nil, nil, unavailable("get "+l.opts.Key, err)
	}
	var last []byte
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		last = kvs[0].Value
	}
	return l.contenders(resp.Responses[0].GetResponseRange().Kvs), last, nil
}

// record parses the contender's value; Token is its create revision.
func (c *contender) record() *instance.Record {
	rec, err := instance.ParseRecord(c.value)
	if err != nil {
		return nil
	}
	rec.Token = uint64(c.rev)
	return rec
}

// holderOf describes the lock from its queue (q[0] holds it) or, when q is
// empty, from the last record.
func (l *Locker) holderOf(q []*contender, last []byte) *instance.Holder {
	h := &instance.Holder{Path: l.opts.Key}
	if len(q) > 0 {
		h.State, h.Record = instance.Held, q[0].record()
		host := "?"
		if h.Record != nil {
			h.LockPID, host = h.Record.PID, h.Record.Host
		}
		h.Reason = fmt.Sprintf("on host %s, etcd lease %x, token %d", host, int64(q[0].lease), q[0].rev)
		if h.Record == nil {
			h.Reason = fmt.Sprintf("key %s, etcd lease %x, holds no guard record", q[0].key, int64(q[0].lease))
		}
		if n := len(q) - 1; n > 0 {
			h.Reason += fmt.Sprintf("; %d waiting, in order:", n)
			for _, w := range q[1:] {
				if r := w.record(); r != nil {
					h.Reason += fmt.Sprintf(" PID %d on %s since %s,", r.PID, r.Host, r.Acquired.Local().Format(time.RFC3339))
				} else {
					h.Reason += " " + w.key + ","
				}
			}
			h.Reason = strings.TrimSuffix(h.Reason, ",")
		}
		return h
	}
	if last == nil {
		h.State, h.Reason = instance.Free, "never held"
		return h
	}
	rec, err := instance.ParseRecord(last)
	switch {
	case err != nil:
		h.State, h.Reason = instance.Stale, "the last record is malformed: "+err.Error()
	case rec.PID == 0:
		h.State, h.Record = instance.Free, rec
		h.Reason = fmt.Sprintf("released cleanly by PID %d on host %s at %s", rec.LastPID, rec.Host,
			rec.Released.Local().Format(time.RFC3339))
	default:
		h.State, h.Record = instance.Stale, rec
		h.Reason = fmt.Sprintf("PID %d on host %s lost its lease without releasing the lock (crash, partition or revocation; taken %s)",
			rec.PID, rec.Host, rec.Acquired.Local().Format(time.RFC3339))
	}
	return h
}
