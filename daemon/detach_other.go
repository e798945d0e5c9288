//go:build !linux

package daemon

import (
	"errors"
	"fmt"
	"os"
)

// Detaching relies on Linux (/proc/self/exe, close_range); elsewhere only the foreground
// mode of Detach works.

type starter struct{ pipe *os.File }

func startStage1(DetachOptions) (*starter, error) {
	return nil, fmt.Errorf("detach: %w on this system", errors.ErrUnsupported)
}

func (s *starter) kill() {}
func (s *starter) reap() {}

func runStage1(int) {
	fmt.Fprintf(os.Stderr, "daemon: %s set, but detaching is not supported on this system\n", StageEnv)
	os.Exit(ExitFailure)
}

func becomeDaemon(int, DetachOptions) (*Handle, error) {
	return nil, fmt.Errorf("daemon: detach: %w on this system", errors.ErrUnsupported)
}

func reopenOutput(string) error { return errors.ErrUnsupported }
