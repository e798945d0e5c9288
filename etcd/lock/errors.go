package etcdlock

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/guardkit/guard/instance"
)

// ErrUnavailable is matched by the errors returned when etcd cannot be
// reached or does not answer in time. guard maps it to exit status 69.
// It matches instance.ErrUnavailable too.
var ErrUnavailable = fmt.Errorf("etcd: %w", instance.ErrUnavailable)

// The causes Lease.Err reports. Each matches instance.ErrLost and one of
// instance.ErrLeaseDeadline, ErrLeaseExpired and ErrLeaseRevoked.
var (
	// ErrPartition: no keepalive was acknowledged in time, and the deadline
	// computed from the send time of the last acknowledged one has passed.
	// The server may hand the lock to someone else from now on.
	ErrPartition = fmt.Errorf("%w: no keepalive acknowledged before the lease's deadline", instance.ErrLeaseDeadline)
	// ErrExpired: etcd answered a keepalive with TTL 0: the lease is gone.
	ErrExpired = fmt.Errorf("%w: the lease expired", instance.ErrLeaseExpired)
	// ErrRevoked: the holder's key was deleted (the lease was revoked, or
	// the key removed, by someone else).
	ErrRevoked = fmt.Errorf("%w: the lease was revoked or the holder's key deleted", instance.ErrLeaseRevoked)
)

// unavailable wraps err in ErrUnavailable when it says that etcd could not
// be reached or did not answer in time; other errors are returned as they are.
func unavailable(what string, err error) error {
	if err == nil {
		return nil
	}
	if isUnavailable(err) {
		return fmt.Errorf("%s: %w: %v", what, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func isUnavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}
