package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"guard/daemon"
	"guard/health"
	"guard/instance"
	"guard/pidfile"
)

// supervisor runs the job of guard run while the lease holds.
type supervisor struct {
	opts   *runOpts
	lock   *instance.Lock
	lease  *instance.FileLease
	path   string
	name   string
	term   <-chan os.Signal
	hup    <-chan os.Signal
	obs    *observer
	handle *daemon.Handle // --detach: told once the job runs

	cmd      *exec.Cmd
	reloads  int
	stopping bool // SIGTERM sent to the job; a second one escalates
	timedOut bool // --timeout expired
	killC    <-chan time.Time
	fg       bool            // the job's group was given the terminal
	drained  <-chan struct{} // --output syslog: closed once the job's output is sent
}

// run starts the job, supervises it and returns guard's exit status.
func (s *supervisor) run(argv []string) (err error) {
	defer func() {
		if rerr := s.lease.Release(); rerr != nil && err == nil {
			err = rerr
		}
	}()
	if s.opts.pidfile != "" {
		pf, err := pidfile.Write(s.opts.pidfile, os.Getpid(), 0o644)
		if err != nil {
			return fmt.Errorf("write PID file: %w", err)
		}
		// Removed while the lock is still held, and only if it is ours.
		defer func() {
			if rerr := pf.Remove(); rerr != nil {
				logf("%v", rerr)
			}
		}()
	}
	if err := s.start(argv); err != nil {
		return err
	}
	return s.loop()
}

func (s *supervisor) start(argv []string) error {
	inh, err := s.lease.Inherit()
	if err != nil {
		return err
	}
	defer inh.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if s.opts.output == "syslog" {
		w, drained, err := toSyslog("guard/" + s.name)
		if err != nil {
			return err
		}
		s.drained = drained
		// The pipe's write end lives in the job only: at its end, and its
		// children's, the forwarding ends.
		defer w.Close()
		cmd.Stdout, cmd.Stderr = w, w
	}
	cmd.Env = append(os.Environ(),
		"GUARD_LOCK="+s.path,
		"GUARD_NAME="+s.name,
		"GUARD_TOKEN="+strconv.FormatUint(s.lease.Token(), 10),
		"GUARD_LOCK_FD=3")
	// The job inherits the locked descriptor as fd 3: if guard is killed
	// with SIGKILL, the job is killed too (Pdeathsig) and whatever the job
	// started keeps the lock until it ends, so runs never overlap.
	cmd.ExtraFiles = []*os.File{inh}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if s.fg = foregroundTTY(); s.fg {
		cmd.SysProcAttr.Foreground = true
		cmd.SysProcAttr.Ctty = 0
	}
	if err := cmd.Start(); err != nil {
		code := 126
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			code = 127
		}
		s.obs.finish(health.JobRun{Result: health.ResultFailure, ExitCode: code})
		return exitf(code, "%s: cannot start %s: %v", s.path, argv[0], err)
	}
	s.cmd = cmd
	s.obs.jobStarted()
	if s.handle != nil {
		s.handle.Ready() // the starting process exits 0 now
	} else {
		daemon.Ready() // sd_notify READY=1 under systemd; nothing otherwise
	}
	return nil
}

// foregroundTTY reports whether stdin is a terminal whose foreground process
// group is guard's: then the job gets the terminal, as a shell would give it.
func foregroundTTY() bool {
	pgrp, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}

func (s *supervisor) loop() error {
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	var timeout <-chan time.Time
	if s.opts.timeout > 0 {
		t := time.NewTimer(s.opts.timeout)
		defer t.Stop()
		timeout = t.C
	}
	lost := s.lease.Lost()
	var chld chan os.Signal
	if os.Getpid() == 1 {
		// PID 1 in a container: orphans are ours to reap.
		chld = make(chan os.Signal, 1)
		signal.Notify(chld, syscall.SIGCHLD)
		defer signal.Stop(chld)
	}
	for {
		select {
		case <-done:
			daemon.ReapOrphans(0)
			s.drain()
			return s.finish()
		case <-chld:
			daemon.ReapOrphans(s.cmd.Process.Pid)
		case sig := <-s.term:
			if s.stopping {
				s.signalJob(syscall.SIGKILL)
				continue
			}
			daemon.Stopping()
			s.stop(sig.(syscall.Signal))
		case <-s.hup:
			s.reloads++
			err := s.cmd.Process.Signal(syscall.SIGHUP)
			s.obs.state.Reload(err == nil, time.Now())
			if err == nil {
				logf("%s: SIGHUP forwarded to job PID %d (reload %d)", s.path, s.cmd.Process.Pid, s.reloads)
			}
		case <-timeout:
			logf("%s: job PID %d still running after --timeout %v; stopping it", s.path, s.cmd.Process.Pid, s.opts.timeout)
			s.timedOut = true
			s.stop(syscall.SIGTERM)
		case <-s.killC:
			logf("%s: job PID %d did not stop within %v; sending SIGKILL", s.path, s.cmd.Process.Pid, s.opts.killAfter)
			s.signalJob(syscall.SIGKILL)
			s.killC = nil
		case <-lost:
			lost = s.relock()
		}
	}
}

// stop sends sig to the job's process group and arms the SIGKILL timer.
func (s *supervisor) stop(sig syscall.Signal) {
	s.stopping = true
	s.signalJob(sig)
	if s.killC == nil {
		s.killC = time.After(s.opts.killAfter)
	}
}

// signalJob signals the job's process group: guard's own child, whose
// group guard created, never a number read from a file.
func (s *supervisor) signalJob(sig syscall.Signal) {
	if pgid := s.cmd.Process.Pid; pgid > 1 {
		unix.Kill(-pgid, sig)
	}
}

// relock reacts to the lock file being deleted or replaced: it takes the
// lock on the file now at the path, so no second run can start, or, if that
// fails, stops the job. It returns the channel to watch next.
func (s *supervisor) relock() <-chan struct{} {
	cause := s.lease.Err()
	s.obs.state.Lost()
	le, err := s.lock.TryLockFile()
	if err != nil {
		logf("%v; cannot take the lock again (%v); stopping job PID %d", cause, err, s.cmd.Process.Pid)
		s.stop(syscall.SIGTERM)
		return nil
	}
	s.lease.Release()
	s.lease = le
	s.obs.state.Acquired(pid, le.Token(), le.Since(), 0)
	logf("%v; took the lock again on the new file (token %d)", cause, le.Token())
	return le.Lost()
}

// finish turns the job's end into guard's exit status.
func (s *supervisor) finish() error {
	if s.fg {
		signal.Ignore(syscall.SIGTTOU)
		unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, unix.Getpgrp())
	}
	ps := s.cmd.ProcessState
	pid := s.cmd.Process.Pid
	ws, _ := ps.Sys().(syscall.WaitStatus)
	code := ps.ExitCode()
	if ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	result := health.ResultSuccess
	switch {
	case s.timedOut:
		result = health.ResultTimeout
	case s.stopping || ws.Signaled() && ws.Signal() == syscall.SIGKILL:
		result = health.ResultKilled
	case code != 0:
		result = health.ResultFailure
	}
	s.obs.jobEnded(result, code)
	if ws.Signaled() {
		return exitf(code, "%s: job PID %d killed by %s", s.path, pid, unix.SignalName(ws.Signal()))
	}
	if code != 0 {
		return exitf(code, "%s: job PID %d exited with status %d", s.path, pid, code)
	}
	return nil
}

// drain waits until the job's last output lines reached syslog, for at most
// two seconds: a process the job left behind may hold the pipe open.
func (s *supervisor) drain() {
	if s.drained == nil {
		return
	}
	select {
	case <-s.drained:
	case <-time.After(2 * time.Second):
		logf("%s: job output still open 2s after the job ended; not waiting for it", s.path)
	}
}
