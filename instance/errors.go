package instance

import (
	"errors"
	"fmt"
)

// ErrHeld is matched by the error TryLock and Lock return when another
// process holds the lock.
var ErrHeld = errors.New("lock is held by another process")

// Why a renewed lease (see Renewed) was lost, for reports. A backend's
// causes match one of these as well as ErrLost.
var (
	// ErrLeaseDeadline: no renewal was acknowledged before the deadline
	// (a partition, or a server that stopped answering).
	ErrLeaseDeadline = fmt.Errorf("%w: renewal deadline passed", ErrLost)
	// ErrLeaseExpired: the server said the lease was gone.
	ErrLeaseExpired = fmt.Errorf("%w: lease expired", ErrLost)
	// ErrLeaseRevoked: someone else revoked the lease or deleted the key.
	ErrLeaseRevoked = fmt.Errorf("%w: lease revoked", ErrLost)
)

// ErrUnavailable is matched by the errors of a Locker whose backend (a
// distributed store) cannot be reached or does not answer in time.
var ErrUnavailable = errors.New("lock backend unavailable")

// ErrUnsafe is matched by every *UnsafeError.
var ErrUnsafe = errors.New("refused as unsafe")

// ErrLost is the cause a Lease reports once it no longer protects
// exclusivity: the lock's path no longer names the locked file, or the locked
// descriptor was unlocked behind the holder's back.
var ErrLost = errors.New("lock lost")

// HeldError reports that the lock is busy. Holder is what Inspect found out
// about the holder; it may be nil if that could not be read.
type HeldError struct {
	Path   string
	Holder *Holder
	Err    error // the context's error when a wait ended, else nil
}

func (e *HeldError) Error() string {
	msg := fmt.Sprintf("%s: busy", e.Path)
	if e.Holder != nil {
		if d := e.Holder.Describe(); d != "" {
			msg += ", " + d
		}
	}
	if e.Err != nil {
		msg += " (gave up waiting: " + e.Err.Error() + ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrHeld) true.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// Unwrap returns the context error of an ended wait, if any.
func (e *HeldError) Unwrap() error { return e.Err }

// UnsafeError reports a lock path refused for safety. Path names the file or
// directory at fault and Reason says why.
type UnsafeError struct {
	Path   string
	Reason string
}

func (e *UnsafeError) Error() string { return fmt.Sprintf("%s: refused: %s", e.Path, e.Reason) }

// Is makes errors.Is(err, ErrUnsafe) true.
func (e *UnsafeError) Is(target error) bool { return target == ErrUnsafe }
