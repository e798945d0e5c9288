package instance

import (
	"context"
	"time"
)

// Locker is a single-instance lock. *Lock implements it on a local file; a
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
	_ Locker = (*Lock)(nil)
	_ Lease  = (*FileLease)(nil)
)
