package safepath

import (
	"errors"
	"fmt"
)

// ErrUnsafe is matched by every *UnsafeError.
var ErrUnsafe = errors.New("refused as unsafe")

// ErrNotSynced is matched by the error Dir.WriteFile returns when only the
// final fsync of the directory failed: the new file is in place, but may not
// survive a crash.
var ErrNotSynced = errors.New("directory not synced")

// UnsafeError reports a path refused by the rule of the package. Path names
// the directory, link or file at fault (resolved, without links), and Reason
// says why.
type UnsafeError struct {
	Path   string
	Reason string
}

func (e *UnsafeError) Error() string { return fmt.Sprintf("%s: refused: %s", e.Path, e.Reason) }

// Is makes errors.Is(err, ErrUnsafe) true.
func (e *UnsafeError) Is(target error) bool { return target == ErrUnsafe }
