package pidfile

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrMalformed is matched by every *MalformedError.
var ErrMalformed = errors.New("malformed pid file")

// ErrUnsafe is matched by every *UnsafeError.
var ErrUnsafe = errors.New("refused as unsafe")

// ErrStale is matched by a *StateError for a PID file whose process is Dead,
// a Zombie, or whose PID was Reused.
var ErrStale = errors.New("pid file is stale")

// ErrUnverified is matched by a *StateError for a PID file in State Unknown.
var ErrUnverified = errors.New("cannot verify the process of the pid file")

// ErrChanged reports that a PID file was rewritten, replaced or removed
// between Inspect and Info.Process. Inspect it again.
var ErrChanged = errors.New("pid file changed since it was inspected")

// ErrReplaced reports that File.Remove left the path in place because it no
// longer names the file that Write created.
var ErrReplaced = errors.New("pid file is no longer the one this process wrote")

// ErrExecMismatch is matched by every *ExecError.
var ErrExecMismatch = errors.New("process does not run the expected executable")

// MalformedError reports content that is not a strictly formed PID. Path is
// empty when the content did not come from a file (Parse). Content is the
// offending content, Go-quoted and cut to its first 32 bytes.
type MalformedError struct {
	Path    string
	Content string
	Reason  string
}

func (e *MalformedError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("malformed pid %s: %s", e.Content, e.Reason)
	}
	return fmt.Sprintf("%s: malformed pid file %s: %s", e.Path, e.Content, e.Reason)
}

// Is makes errors.Is(err, ErrMalformed) true.
func (e *MalformedError) Is(target error) bool { return target == ErrMalformed }

// UnsafeError reports a PID file refused for safety: a symbolic link, not a
// regular file, owned by an untrusted user, writable by others, or in a
// directory that others can change. Path is the PID file; Reason says why and
// names the directory when it is at fault.
type UnsafeError struct {
	Path   string
	Reason string
}

func (e *UnsafeError) Error() string { return fmt.Sprintf("%s: refused: %s", e.Path, e.Reason) }

// Is makes errors.Is(err, ErrUnsafe) true.
func (e *UnsafeError) Is(target error) bool { return target == ErrUnsafe }

// StateError reports that Info.Process refused a process because its State
// is not Running. It matches ErrStale (Dead, Zombie, Reused) or
// ErrUnverified (Unknown).
type StateError struct {
	Path   string
	PID    int
	State  State
	Reason string
}

func (e *StateError) Error() string {
	msg := fmt.Sprintf("%s: pid %d: %s", e.Path, e.PID, e.State)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg + "; not signalling it"
}

// Is makes errors.Is(err, ErrStale) or errors.Is(err, ErrUnverified) true,
// by State.
func (e *StateError) Is(target error) bool {
	switch e.State {
	case Dead, Zombie, Reused:
		return target == ErrStale
	default:
		return target == ErrUnverified
	}
}

// ExecError reports that a process does not run the executable it was
// expected to. Exe is where /proc/PID/exe points (it ends in " (deleted)"
// when the binary was deleted or replaced since the process started), or ""
// when the process has no executable (a kernel thread, or a zombie).
type ExecError struct {
	PID  int
	Want string
	Exe  string
	// Reason says what differs.
	Reason string
}

func (e *ExecError) Error() string {
	return fmt.Sprintf("pid %d does not run %s: %s", e.PID, e.Want, e.Reason)
}

// Is makes errors.Is(err, ErrExecMismatch) true.
func (e *ExecError) Is(target error) bool { return target == ErrExecMismatch }

// quote renders file content for an error: Go-quoted, cut to 32 bytes.
func quote(b []byte) string {
	const max = 32
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}
