package main

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"guard/instance"
	"guard/internal/proc"
)

func stopCmd(args []string) error {
	var t targetFlags
	timeout, killWait := 10*time.Second, 5*time.Second
	fs := newFlags("stop", "[--lock PATH | --name NAME | --pidfile PATH [--exec PATH]] [--timeout D]")
	t.register(fs)
	fs.Var(durationFlag{&timeout}, "timeout", "how long to wait after SIGTERM before sending SIGKILL")
	fs.Var(durationFlag{&killWait}, "kill-wait", "how long to wait after SIGKILL before giving up")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := t.check(); err != nil {
		return err
	}
	if t.pidfile != "" {
		return pidfileStop(&t, timeout, killWait)
	}
	h, _, err := t.inspect()
	if err != nil {
		return err
	}
	p, err := provenHolder(h)
	if p == nil {
		return err
	}
	defer p.Close()
	lockFree := func(ctx context.Context) bool { return waitLockFree(ctx, h.Path, p, h.Record.Token) }
	return escalate(h.Path, p, timeout, killWait, lockFree)
}

// provenHolder opens a pidfd on the holder of h if, and only if, it is
// proven to be the current holder (Promise 1). It returns (nil, nil) when
// nobody holds the lock, after saying so.
func provenHolder(h *instance.Holder) (*proc.Process, error) {
	switch h.State {
	case instance.Free, instance.Stale:
		fmt.Printf("%s: not running (%s)\n", h.Path, h.Reason)
		return nil, nil
	case instance.Unknown:
		return nil, exitf(lsbUnknown, "%s: cannot tell who holds the lock: %s; not signalling", h.Path, h.Reason)
	}
	if !h.Verified {
		return nil, exitf(1, "%s: %s; not signalling a process that is not the proven holder", h.Path, h.Describe())
	}
	p, err := proc.Open(h.Record.PID, h.Record.StartTicks)
	if err != nil {
		return nil, exitf(1, "%s: holder PID %d: %v; not signalling", h.Path, h.Record.PID, err)
	}
	return p, nil
}

// escalate sends SIGTERM to p, waits up to timeout for free() (the lock or
// PID file released), then sends SIGKILL and waits up to killWait.
func escalate(path string, p *proc.Process, timeout, killWait time.Duration, free func(context.Context) bool) error {
	if err := p.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, proc.ErrGone) {
		return exitf(codeOf(err), "%s: PID %d: %v", path, p.PID, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	ok := free(ctx)
	cancel()
	if ok {
		fmt.Printf("%s: stopped PID %d\n", path, p.PID)
		return nil
	}
	logf("%s: PID %d still running %v after SIGTERM; sending SIGKILL", path, p.PID, timeout)
	if err := p.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, proc.ErrGone) {
		return exitf(codeOf(err), "%s: PID %d: %v", path, p.PID, err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), killWait)
	defer cancel()
	if free(ctx) {
		fmt.Printf("%s: killed PID %d\n", path, p.PID)
		return nil
	}
	return exitf(1, "%s: still held %v after SIGKILL to PID %d (a process it started keeps the lock)", path, killWait, p.PID)
}

// waitLockFree waits until p has exited and its hold on the lock at path has
// ended: nobody holds it, or a new holder (a hot standby) took it under
// another fencing token. A zombie still answers kill -0; the lock is what
// counts, and a process p started that inherited the lock keeps p's token.
func waitLockFree(ctx context.Context, path string, p *proc.Process, token uint64) bool {
	if p.Wait(ctx) != nil {
		return false
	}
	for {
		h, err := instance.Inspect(path)
		if err == nil && (h.State == instance.Free || h.State == instance.Stale ||
			h.State == instance.Held && h.Record != nil && h.Record.Token != token) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func reloadCmd(args []string) error {
	var t lockFlags
	fs := newFlags("reload", "[--lock PATH | --name NAME]")
	t.register(fs.FlagSet)
	if err := fs.parse(args); err != nil {
		return err
	}
	tf := targetFlags{lockFlags: t}
	if err := tf.check(); err != nil {
		return err
	}
	h, _, err := tf.inspect()
	if err != nil {
		return err
	}
	p, err := provenHolder(h)
	if p == nil {
		if err == nil {
			err = silent(lsbNotRunningAction)
		}
		return err
	}
	defer p.Close()
	if err := p.Signal(syscall.SIGHUP); err != nil {
		return exitf(1, "%s: PID %d: %v", h.Path, p.PID, err)
	}
	fmt.Printf("%s: sent SIGHUP to PID %d\n", h.Path, p.PID)
	return nil
}
