package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/internal/proc"
	"github.com/guardkit/guard/pidfile"
)

// pidfileJSON is the JSON form of a PID file's status.
type pidfileJSON struct {
	Path    string    `json:"path"`
	PID     int       `json:"pid"`
	State   string    `json:"state"`
	Running bool      `json:"running"`
	Written time.Time `json:"written"`
	Reason  string    `json:"reason,omitempty"`
}

// inspectPidfile judges the PID file of a daemon guard did not start. An
// --exec mismatch turns Running into "stale": the PID is not that program.
func inspectPidfile(t *targetFlags) (*pidfile.Info, int, error) {
	info, err := pidfile.Inspect(t.pidfile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, lsbNotRunning, nil
	}
	if err != nil {
		return nil, 0, err
	}
	code := lsbUnknown
	switch info.State {
	case pidfile.Running:
		code = lsbRunning
		if t.exe != "" {
			if err := pidfile.MatchesExec(info.PID, t.exe); err != nil {
				code, info.Reason = lsbStale, err.Error()
			}
		}
	case pidfile.Dead, pidfile.Zombie, pidfile.Reused:
		code = lsbStale
	}
	return info, code, nil
}

func (c *CLI) pidfileStatus(t *targetFlags, asJSON bool) error {
	info, code, err := inspectPidfile(t)
	if err != nil {
		return err
	}
	if info == nil {
		if asJSON {
			return c.printJSON(pidfileJSON{Path: t.pidfile, State: "absent"}, code)
		}
		fmt.Fprintf(c.stdout, "%s: not running (no PID file)\n", t.pidfile)
		return silent(code)
	}
	if asJSON {
		return c.printJSON(pidfileJSON{Path: info.Path, PID: info.PID, State: info.State.String(),
			Running: code == lsbRunning, Written: info.ModTime, Reason: info.Reason}, code)
	}
	switch code {
	case lsbRunning:
		fmt.Fprintf(c.stdout, "%s: running, PID %d\n", info.Path, info.PID)
		return nil
	case lsbStale:
		fmt.Fprintf(c.stdout, "%s: not running, stale: PID %d %s (%s)\n", info.Path, info.PID, info.State, info.Reason)
	default:
		fmt.Fprintf(c.stdout, "%s: unknown: PID %d: %s\n", info.Path, info.PID, info.Reason)
	}
	return silent(code)
}

func (c *CLI) pidfileStop(t *targetFlags, timeout, killWait time.Duration) error {
	info, code, err := inspectPidfile(t)
	if err != nil {
		return err
	}
	switch {
	case info == nil:
		fmt.Fprintf(c.stdout, "%s: not running (no PID file)\n", t.pidfile)
		return nil
	case code == lsbStale:
		fmt.Fprintf(c.stdout, "%s: not running (stale PID file: PID %d %s; %s); nothing signalled\n", info.Path, info.PID, info.State, info.Reason)
		return nil
	case code != lsbRunning:
		return exitf(lsbUnknown, "%s: PID %d cannot be verified: %s; not signalling", info.Path, info.PID, info.Reason)
	}
	p, err := info.Process(t.exe)
	if err != nil {
		return exitf(1, "%s: PID %d: %v; not signalling", info.Path, info.PID, err)
	}
	defer p.Close()
	// p pins the process: if the PID names another one by now, the signal
	// reaches nobody, whatever kin says about the new one.
	if why := kin(info.PID); why != "" {
		return exitf(exitUnsafe, "%s: PID %d is %s; refusing to signal it", info.Path, info.PID, why)
	}
	exited := func(ctx context.Context) bool { return p.Wait(ctx) == nil }
	return c.escalate(info.Path, p, timeout, killWait, exited)
}

// kin says how pid is related to guard, or "" if it is not: guard itself,
// one of its ancestors, the leader of its session, or a member of its
// process group. A PID file naming any of them would have guard stop the
// shell, script or supervisor that runs it. A process that merely shares
// the session (a job started from the same shell) is not kin.
func kin(pid int) string {
	if pid == os.Getpid() {
		return "guard itself"
	}
	if sid, err := unix.Getsid(0); err == nil && pid == sid {
		return "the leader of guard's session"
	}
	for p, n := os.Getppid(), 0; p > 1 && n < 4096; n++ {
		if p == pid {
			return "an ancestor of guard"
		}
		st, err := proc.ReadStat(p)
		if err != nil {
			break
		}
		p = st.PPID
	}
	if st, err := proc.ReadStat(pid); err == nil && st.PGID == unix.Getpgrp() {
		return "in guard's own process group"
	}
	return ""
}
