//go:build !linux

package daemon

import (
	"errors"
	"fmt"
)

// Supervise needs waitid(WNOWAIT) and PR_SET_CHILD_SUBREAPER: Linux only.

const canPeek = false

func setSubreaper() error {
	return fmt.Errorf("child subreaper: %w on this system", errors.ErrUnsupported)
}

func peekExited() (int, error) { return 0, errors.ErrUnsupported }

func reapPID(int) bool { return false }
