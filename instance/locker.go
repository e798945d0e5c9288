package instance

import (
	"context"
	"time"
)

// Locker is a single-instance lock. *FileLocker implements it on a local file; a
// distributed backend (etcd) implements it too.
type Locker interface {
	// TryLock takes the lock if it is free and returns at once otherwise,
	// with an error matching ErrHeld (a *HeldError naming the holder).
	TryLock(ctx context.Context) (Lease, error)
	// Lock waits for the lock until ctx is done, waking as soon as the
	// holder releases it. When ctx ends first the error matches ErrHeld and
	// wraps ctx.Err().
	Lock(ctx context.Context) (Lease, error)
	// Inspect reports who holds the lock without disturbing holder or
	// contenders.
	Inspect(ctx context.Context) (*Holder, error)
}

// Lease is one acquisition of a lock.
type Lease interface {
	// Token is the fencing token of this acquisition.
	Token() uint64
	// Record is what was written about this holder.
	Record() Record
	// Since is when the lock was taken.
	Since() time.Time
	// Lost is closed when the lease stops protecting exclusivity (the lock
	// file was deleted or replaced, the lock was dropped behind the holder's
	// back, or a distributed session expired).
	Lost() <-chan struct{}
	// Err returns why the lease was lost, or nil while it holds.
	Err() error
	// Release gives the lock up. It is idempotent.
	Release() error
}

// The local file lock is one implementation of the backend interfaces.
var (
	_ Locker = (*FileLocker)(nil)
	_ Lease  = (*FileLease)(nil)
)

// SuccessRecorder is a Lease that keeps, with the lock (in its record), when
// a job run under it last succeeded: the next holder finds it in
// Record().LastSuccess, on this host after a reboot if the lock file
// survives it, or on any host for a distributed lock. Both the local file
// lock and etcd implement it. A record that cannot be written is an error;
// the lease still holds.
type SuccessRecorder interface {
	Lease
	RecordSuccess(t time.Time) error
}

// Renewed is implemented by a Lease that a server hands to someone else
// unless it is renewed in time (etcd). Whoever runs a job under such a lease
// must have the job's whole process tree dead before the server can give the
// lock away:
//
//   - Jeopardy is closed once renewal is overdue (half the TTL without an
//     acknowledged renewal): report not ready, so load balancers drain.
//   - Ending is closed when the job's tree must begin to stop (SIGTERM), a
//     grace period before the deadline. A stop once begun goes on even if a
//     later renewal succeeds.
//   - Lost (from Lease) is closed at the deadline, or at once when the lease
//     is revoked or found expired: kill the tree (SIGKILL) now.
//
// The local file lock does not implement it: it cannot be taken away.
type Renewed interface {
	Lease
	Jeopardy() <-chan struct{}
	Ending() <-chan struct{}
}

// Controlled is implemented by a Lease whose holder may run on another host
// (etcd): guard stop and guard reload reach it through the backend, not by
// signals. The holder acts on each Request it receives on Requests: a stop
// is its normal stop of the job's whole tree, then Release; a reload is a
// SIGHUP forwarded to the job, whose outcome Done reports to the asker.
type Controlled interface {
	Lease
	Requests() <-chan Request
}

// Request is a stop or reload asked of a Controlled lease's holder.
type Request struct {
	Reload bool // false: stop
	// Done reports a reload's outcome to the asker (nil: done). It is nil
	// for a stop, whose outcome is the lock becoming free.
	Done func(error)
}

// Renewal is one renewal attempt of a Renewed lease, as reported to a
// RenewalReporter's function.
type Renewal struct {
	Err error         // nil when the server acknowledged it
	RTT time.Duration // from sending the request to its answer (or failure)
	TTL time.Duration // as the server granted it
	// Deadline is when the job's tree must be dead unless a later renewal
	// succeeds, as a wall-clock time (read from the lease's own clock).
	Deadline time.Time
}

// RenewalReporter is a Renewed lease that reports each renewal attempt,
// for metrics. report runs on the lease's renewal goroutine: it must be
// quick and must not block.
type RenewalReporter interface {
	ReportRenewals(report func(Renewal))
}
