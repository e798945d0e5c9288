package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

// DefaultKillAfter is how long Supervise waits after SIGTERM (on ctx done) before SIGKILL
// when SuperviseOptions.KillAfter is zero.
const DefaultKillAfter = 10 * time.Second

// ForwardedSignals are the signals Supervise forwards to the job by default.
var ForwardedSignals = []os.Signal{
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP,
	syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2,
}

// SuperviseOptions configures Supervise. The zero value forwards ForwardedSignals and
// reaps orphans only where the kernel hands them to us (PID 1).
type SuperviseOptions struct {
	// Forward lists the signals passed on to the job's process group; nil means
	// ForwardedSignals. They are caught (not acted on) in this process while Supervise
	// runs.
	Forward []os.Signal
	// Subreaper makes this process a child subreaper (PR_SET_CHILD_SUBREAPER) before the
	// job starts, so orphaned descendants are reparented to it, and reaped, instead of to
	// PID 1. The setting stays after Supervise returns.
	Subreaper bool
	// KillAfter is how long to wait after SIGTERM, sent when ctx is done, before SIGKILL
	// to the job's process group; zero means DefaultKillAfter.
	KillAfter time.Duration
	// Started, if set, is called with the job's PID once it has started, before any
	// signal is forwarded (e.g. to call Handle.Ready: the job runs). It runs on
	// Supervise's goroutine: keep it short.
	Started func(pid int)
	// OnSignal, if set, is called with each forwarded signal after forwarding (e.g. to
	// count SIGHUP as a reload). It runs on Supervise's goroutine: keep it short.
	OnSignal func(os.Signal)
	// Logger receives debug messages about reaped orphans; nil means slog.Default().
	Logger *slog.Logger
}

// ExitStatus is how a job ended.
type ExitStatus struct {
	Code   int            // exit code when the job exited; -1 when killed by a signal
	Signal syscall.Signal // the signal that killed the job; 0 when it exited
}

// ExitCode returns the code a shell would report: Code, or 128+Signal.
func (s ExitStatus) ExitCode() int {
	if s.Signal != 0 {
		return 128 + int(s.Signal)
	}
	return s.Code
}

// String describes the status: "exit code N" or "killed by signal N (name)".
func (s ExitStatus) String() string {
	if s.Signal != 0 {
		return fmt.Sprintf("killed by signal %d (%v)", int(s.Signal), s.Signal)
	}
	return fmt.Sprintf("exit code %d", s.Code)
}

// Supervise starts cmd as the job, in its own process group, and does an init's duties
// until it ends: it forwards the Forward signals to the job's process group, reaps every
// other child that exits (orphans reparented to us as PID 1 or as a subreaper) and
// returns the job's ExitStatus. A job that exits non-zero is not an error.
//
// The job's status is never stolen: orphans are found with waitid(P_ALL, WNOWAIT), which
// only peeks, and reaped one by one by PID; the job itself is reaped only through
// cmd.Wait, by the same goroutine that forwards signals, so a forwarded signal can never
// reach a reused process group ID. While Supervise runs it is the only code in the process
// that may wait for children: any other child that exits is reaped and its status lost.
// Give cmd *os.File (or nil) stdio, or set cmd.WaitDelay, so cmd.Wait cannot hang on
// orphans that hold the job's output pipe.
//
// When ctx is done Supervise sends SIGTERM to the job's process group, SIGKILL KillAfter
// later, and still returns the job's status. It returns an error (and a zero status) if
// the job cannot be started. cmd.SysProcAttr is kept (Pdeathsig, say) and gets Setpgid
// unless it asks for Setsid; a job that must read a terminal should also ask for
// Foreground (tcsetpgrp), or it stops on SIGTTIN. Orphans still running when the job ends
// are left alone.
func Supervise(ctx context.Context, cmd *exec.Cmd, opts SuperviseOptions) (ExitStatus, error) {
	if !canPeek {
		return ExitStatus{}, fmt.Errorf("supervise: %w on this system", errors.ErrUnsupported)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.Subreaper {
		if err := setSubreaper(); err != nil {
			return ExitStatus{}, err
		}
	}
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	defer signal.Stop(chld)
	forward := opts.Forward
	if forward == nil {
		forward = ForwardedSignals
	}
	fwd := make(chan os.Signal, 8)
	if len(forward) > 0 {
		signal.Notify(fwd, forward...)
		defer signal.Stop(fwd)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if !cmd.SysProcAttr.Setsid {
		cmd.SysProcAttr.Setpgid, cmd.SysProcAttr.Pgid = true, 0
	}
	// The job's parent is this thread, not this process: keep the thread for the job's
	// life, so a Pdeathsig the caller set fires only when we really die.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return ExitStatus{}, err
	}
	if opts.Started != nil {
		opts.Started(cmd.Process.Pid)
	}
	s := &supervisor{cmd: cmd, log: log, killAfter: opts.KillAfter}
	if s.killAfter <= 0 {
		s.killAfter = DefaultKillAfter
	}
	return s.loop(ctx, chld, fwd, opts.OnSignal)
}

type supervisor struct {
	cmd       *exec.Cmd
	log       *slog.Logger
	killAfter time.Duration
	done      bool // the job has been reaped: its PID may be reused, never signal it
	status    ExitStatus
	err       error
}

func (s *supervisor) loop(ctx context.Context, chld, fwd <-chan os.Signal, onSignal func(os.Signal)) (ExitStatus, error) {
	var kill <-chan time.Time
	ctxDone := ctx.Done()
	s.reapAll() // a job that died before SIGCHLD was caught
	for !s.done {
		select {
		case <-chld:
			s.reapAll()
		case sig := <-fwd:
			s.signal(sig)
			if onSignal != nil {
				onSignal(sig)
			}
		case <-ctxDone:
			ctxDone = nil
			s.signal(syscall.SIGTERM)
			t := time.NewTimer(s.killAfter)
			defer t.Stop()
			kill = t.C
		case <-kill:
			s.signal(syscall.SIGKILL)
		}
	}
	s.reapAll()
	return s.status, s.err
}

// signal sends sig to the job's process group, unless the job has been reaped (then its
// PID, the group's ID, may already name someone else).
func (s *supervisor) signal(sig os.Signal) {
	if s.done {
		return
	}
	if n, ok := sig.(syscall.Signal); ok {
		if err := syscall.Kill(-s.cmd.Process.Pid, n); err != nil && !errors.Is(err, syscall.ESRCH) {
			s.log.Warn("forward signal to job", "signal", sig.String(), "err", err)
		}
	}
}

// reapAll reaps every exited child, the job through cmd.Wait, the others by PID.
func (s *supervisor) reapAll() {
	for {
		pid, err := peekExited()
		if err != nil || pid == 0 {
			return // ECHILD: no children at all; 0: none exited
		}
		if pid != s.cmd.Process.Pid {
			if reapPID(pid) {
				s.log.Debug("reaped orphan", "pid", pid)
			}
			continue
		}
		if s.done {
			return // cannot happen: cmd.Wait reaped it
		}
		s.done = true
		s.err = s.cmd.Wait()
		s.status = statusOf(s.cmd.ProcessState)
		var ee *exec.ExitError
		if errors.As(s.err, &ee) {
			s.err = nil // a failing job is a result, not an error
		}
	}
}

func statusOf(ps *os.ProcessState) ExitStatus {
	if ps == nil {
		return ExitStatus{Code: -1}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return ExitStatus{Code: -1, Signal: ws.Signal()}
	}
	return ExitStatus{Code: ps.ExitCode()}
}

// ReapOrphans reaps every exited child other than job, whose status belongs
// to its own exec.Cmd.Wait, and returns how many it reaped. Call it on
// SIGCHLD in a program that runs its job loop itself and is PID 1 or a
// subreaper. It stops early when the job is the exited child it finds (the
// kernel lets it peek at one only): call it again once the job is waited for.
func ReapOrphans(job int) int {
	n := 0
	for {
		pid, err := peekExited()
		if err != nil || pid == 0 || pid == job {
			return n
		}
		if reapPID(pid) {
			n++
		}
	}
}
