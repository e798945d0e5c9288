package pidfile

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/guardkit/guard/internal/proc"
)

// Process returns a pidfd handle on the process the PID file names, for
// signalling and waiting, after proving once more, at this moment, that it
// is the process Inspect found:
//
//   - i.State must be Running; otherwise the error is a *StateError that
//     matches ErrStale (Dead, Zombie, Reused) or ErrUnverified (Unknown);
//   - proc.Open must pin the PID with the same start time; it refuses PIDs
//     outside 2..pid_max-1 and the calling process itself, and its errors
//     match proc.ErrGone or proc.ErrChanged when the process exited or the
//     PID now names another process;
//   - the PID file must still be the same file, with the same PID and
//     modification time, and inspecting it again must still say Running;
//     otherwise the error matches ErrChanged (or is a *StateError);
//   - when exe is not "", the process must run that executable
//     (MatchesExec; an *ExecError when it does not).
//
// Signals sent through the handle reach that process only, even if its PID
// is reused later, and never a process group. The caller must Close it.
// Process does not signal anything itself.
func (i *Info) Process(exe string) (*proc.Process, error) {
	if i.State != Running {
		return nil, &StateError{Path: i.Path, PID: i.PID, State: i.State, Reason: i.Reason}
	}
	p, err := proc.Open(i.PID, i.StartTicks)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", i.Path, err)
	}
	if err := i.recheck(exe); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// recheck runs after proc.Open has pinned the process: every check that
// reads /proc and finds the same start time was about the pinned process.
func (i *Info) recheck(exe string) error {
	now, err := Inspect(i.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: removed: %w", i.Path, ErrChanged)
	}
	if err != nil {
		return err
	}
	if now.PID != i.PID || now.Dev != i.Dev || now.Ino != i.Ino || !now.ModTime.Equal(i.ModTime) {
		return fmt.Errorf("%s: %w", i.Path, ErrChanged)
	}
	if now.State != Running {
		return &StateError{Path: now.Path, PID: now.PID, State: now.State, Reason: now.Reason}
	}
	if now.StartTicks != i.StartTicks {
		return fmt.Errorf("%s: pid %d: %w", i.Path, i.PID, proc.ErrChanged)
	}
	if exe == "" {
		return nil
	}
	if err := MatchesExec(i.PID, exe); err != nil {
		return fmt.Errorf("%s: %w", i.Path, err)
	}
	st, err := proc.ReadStat(i.PID)
	if err != nil {
		return fmt.Errorf("%s: %w", i.Path, err)
	}
	if st.StartTicks != i.StartTicks {
		return fmt.Errorf("%s: pid %d: %w", i.Path, i.PID, proc.ErrChanged)
	}
	return nil
}
