package etcdlock

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/guardkit/guard/instance"
)

// Lease is one acquisition of a Locker: an etcd lease, renewed by this
// process, with the holder's key under it. It implements instance.Renewed.
type Lease struct {
	lock *Locker
	id   clientv3.LeaseID
	key  string
	rev  int64           // create revision of key: the fencing token
	rec  instance.Record // set before the lease is handed out, then read-only
	d    *deadlines
	reqs chan instance.Request // stop and reload requests for this holder
	// stamped is closed once take's background write of the stamped record
	// is done (never closed for a contender that did not take the lock).
	stamped chan struct{}
	rep     atomic.Pointer[func(instance.Renewal)]
	success atomic.Pointer[time.Time] // RecordSuccess, written by Release

	ctx    context.Context // ends the lease's goroutines
	cancel context.CancelFunc
	wg     sync.WaitGroup

	once   sync.Once
	relErr error
}

var _ instance.Renewed = (*Lease)(nil)

// newLease starts renewing lease id, granted with ttl for a request sent at
// sent (CLOCK_BOOTTIME).
func newLease(l *Locker, id clientv3.LeaseID, sent, ttl time.Duration, rec *instance.Record) *Lease {
	ctx, cancel := context.WithCancel(context.Background())
	le := &Lease{lock: l, id: id, key: l.contenderKey(id), rec: *rec, ctx: ctx, cancel: cancel,
		reqs: make(chan instance.Request, 4), stamped: make(chan struct{}),
		d: newDeadlines(sent, ttl, l.opts.Margin, l.opts.Grace)}
	le.wg.Add(2)
	go le.renew()
	go le.watchClock()
	return le
}

// Token implements instance.Lease: the create revision of the holder's key.
// etcd's revisions only grow, so tokens strictly increase across the
// holders of a lock (and of every lock in the cluster).
func (le *Lease) Token() uint64 { return uint64(le.rev) }

// Record implements instance.Lease: the record in the holder's key, with
// the last success RecordSuccess gave.
func (le *Lease) Record() instance.Record {
	rec := le.rec
	if t := le.success.Load(); t != nil {
		rec.LastSuccess = *t
	}
	return rec
}

var _ instance.SuccessRecorder = (*Lease)(nil)

// RecordSuccess implements instance.SuccessRecorder. It costs no round trip:
// Release writes it into the last record, with the release, in its one
// transaction. A holder that dies before Release loses it (the next run
// then runs: the safe side for --min-interval).
func (le *Lease) RecordSuccess(t time.Time) error {
	le.success.Store(&t)
	return nil
}

// Since implements instance.Lease: when the lock was taken.
func (le *Lease) Since() time.Time { return le.rec.Acquired }

var _ instance.RenewalReporter = (*Lease)(nil)

// ReportRenewals implements instance.RenewalReporter.
func (le *Lease) ReportRenewals(report func(instance.Renewal)) { le.rep.Store(&report) }

// report tells the reporter, if any, of a renewal sent at sent.
func (le *Lease) report(sent time.Duration, err error) {
	f := le.rep.Load()
	if f == nil {
		return
	}
	now := boottime()
	le.d.mu.Lock()
	ttl, dl := le.d.ttl, le.d.deadline
	le.d.mu.Unlock()
	(*f)(instance.Renewal{Err: err, RTT: now - sent, TTL: ttl, Deadline: time.Now().Add(dl - now)})
}

// ID returns the etcd lease ID.
func (le *Lease) ID() clientv3.LeaseID { return le.id }

// Key returns the holder's key.
func (le *Lease) Key() string { return le.key }

// Env returns the variables a job run under this lease gets besides
// GUARD_TOKEN, for scripts written for etcdctl lock: ETCD_LOCK_KEY, the
// holder's key, and ETCD_LOCK_REV, its create revision (the fencing token;
// etcdctl's own ETCD_LOCK_REV is the revision of the put, which differs from
// the create revision once a waiter waited).
func (le *Lease) Env() []string {
	return []string{"ETCD_LOCK_KEY=" + le.key, "ETCD_LOCK_REV=" + strconv.FormatInt(le.rev, 10)}
}

// Jeopardy implements instance.Renewed: closed once half the TTL has passed
// since the send time of the last acknowledged keepalive. It stays closed.
func (le *Lease) Jeopardy() <-chan struct{} { return le.d.jeopardy }

// Ending implements instance.Renewed: closed Grace before the deadline
// D = S + TTL*(1-2*Rho) - Margin, S being the send time of the last
// acknowledged keepalive, and whenever Lost closes. It stays closed even if
// a later keepalive succeeds.
func (le *Lease) Ending() <-chan struct{} { return le.d.ending }

// Lost implements instance.Lease: closed at the deadline D, or at once when
// etcd answers a keepalive with TTL 0 or the holder's key is deleted.
// Renewal goes on after a deadline passed until Release: if etcd can be
// reached again, that keeps the lock from passing on while the job dies.
func (le *Lease) Lost() <-chan struct{} { return le.d.lost }

// Err implements instance.Lease: nil while the lease holds, then an error
// matching ErrPartition, ErrExpired or ErrRevoked (each matches
// instance.ErrLost).
func (le *Lease) Err() error { return le.d.cause() }

// Release gives the lock up: in one transaction, if the holder's key is
// still its own, it deletes it and writes the "last" record saying who
// released the lock and when; then it revokes the lease. It is idempotent.
// It does not close Lost or Ending. If the key was gone (the lease expired
// or was revoked), the error matches instance.ErrLost and the last record
// is left alone; if etcd cannot be reached it matches ErrUnavailable (the
// lease then ends by itself within its TTL).
func (le *Lease) Release() error {
	le.once.Do(func() { le.relErr = le.release() })
	return le.relErr
}

func (le *Lease) release() error {
	ctx, cancel := context.WithTimeout(context.Background(), le.lock.opts.Timeout)
	defer cancel()
	rel := le.Record()
	rel.LastPID, rel.PID, rel.Released = rel.PID, 0, time.Now()
	// The delete first: it is what wakes the next contender. The renewal,
	// clock and watches are stopped after it, off the hand-over's path (a
	// renewal in between is harmless; the watch of our own key may see our
	// own delete, which only closes Lost on a lease being released).
	select { // the stamped record first, so the released one comes last
	case <-le.stamped:
	case <-ctx.Done():
	}
	resp, err := le.lock.cli.Txn(ctx).If(le.own()).
		Then(clientv3.OpDelete(le.key), clientv3.OpPut(le.lock.lastKey(), string(rel.Marshal()))).
		Commit()
	le.stop()
	_, rerr := le.lock.cli.Revoke(ctx, le.id)
	switch {
	case err != nil:
		return unavailable("release "+le.key, err)
	case !resp.Succeeded:
		return fmt.Errorf("release %s: %w: the key was gone (lease expired or revoked); the last record is left alone", le.key, instance.ErrLost)
	case rerr != nil && !errors.Is(rerr, rpctypes.ErrLeaseNotFound):
		return unavailable("revoke lease", rerr)
	}
	return nil
}

// abandon leaves the queue: revoking the lease deletes the contender's key
// with it.
func (le *Lease) abandon() {
	le.stop()
	ctx, cancel := context.WithTimeout(context.Background(), le.lock.opts.Timeout)
	defer cancel()
	le.lock.cli.Revoke(ctx, le.id) //nolint:errcheck // the lease expires by itself otherwise
}

// stop ends the renewal, the clock and the watch, and waits for them.
func (le *Lease) stop() {
	le.cancel()
	le.wg.Wait()
}
