package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/guardkit/guard/instance"
	"github.com/guardkit/guard/internal/proc"
)

func (c *CLI) stopCmd(args []string) error {
	var t targetFlags
	timeout, killWait := 10*time.Second, 5*time.Second
	fs := c.newFlags("stop", "[--lock PATH | --name NAME | --pidfile PATH [--exec PATH]] [--timeout DURATION]")
	t.register(fs)
	fs.Var(durationFlag{&timeout}, "timeout", "how long to wait after SIGTERM before sending SIGKILL")
	fs.Var(durationFlag{&killWait}, "kill-wait", "how long to wait after SIGKILL before giving up")
	var force bool
	fs.BoolVar(&force, "force", false, "with a lock in etcd: break the lock now (revoke the holder's lease; the holder kills its job's tree as soon as it hears of it, and the next holder waits one TTL)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := t.check(); err != nil {
		return err
	}
	if force && c.backend == nil {
		return usagef("stop: --force breaks a lock kept in etcd; a local lock is stopped through its proven holder")
	}
	if t.pidfile != "" {
		return c.pidfileStop(&t, timeout, killWait)
	}
	if c.backend != nil {
		rc, err := t.openRemote("stop")
		if err != nil {
			return err
		}
		return c.remoteStop(rc, timeout, killWait, force)
	}
	h, _, err := t.inspect()
	if err != nil {
		return err
	}
	if h.State == instance.Held && h.Orphaned {
		return c.stopOrphans(h, timeout, killWait)
	}
	p, err := c.provenHolder(h)
	if p == nil {
		return err
	}
	defer p.Close()
	lockFree := func(ctx context.Context) bool { return waitLockFree(ctx, h.Path, p, h.Record.Token) }
	return c.escalate(h.Path, p, timeout, killWait, lockFree)
}

// provenHolder opens a pidfd on the holder of h if, and only if, it is
// proven to be the current holder (Promise 1). It returns (nil, nil) when
// nobody holds the lock, after saying so.
func (c *CLI) provenHolder(h *instance.Holder) (*proc.Process, error) {
	switch h.State {
	case instance.Free, instance.Stale:
		fmt.Fprintf(c.stdout, "%s: not running (%s)\n", h.Path, h.Reason)
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
func (c *CLI) escalate(path string, p *proc.Process, timeout, killWait time.Duration, free func(context.Context) bool) error {
	if err := p.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, proc.ErrGone) {
		return exitf(codeOf(err), "%s: PID %d: %v", path, p.PID, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	ok := free(ctx)
	cancel()
	if ok {
		fmt.Fprintf(c.stdout, "%s: stopped PID %d\n", path, p.PID)
		return nil
	}
	c.logf("%s: PID %d still running %v after SIGTERM; sending SIGKILL", path, p.PID, timeout)
	if err := p.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, proc.ErrGone) {
		return exitf(codeOf(err), "%s: PID %d: %v", path, p.PID, err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), killWait)
	defer cancel()
	if free(ctx) {
		fmt.Fprintf(c.stdout, "%s: killed PID %d\n", path, p.PID)
		return nil
	}
	return exitf(1, "%s: still held %v after SIGKILL to PID %d (a process it started keeps the lock)", path, killWait, p.PID)
}

// inspectEvery is how often stop looks again while it waits for the lock to
// be free: each look reads every process's descriptors in /proc (or asks
// etcd), so not in a tight loop.
const inspectEvery = 50 * time.Millisecond

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
		if err == nil && lockFreed(h, token) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(inspectEvery):
		}
	}
}

func (c *CLI) reloadCmd(args []string) error {
	var t lockFlags
	fs := c.newFlags("reload", "[--lock PATH | --name NAME]")
	t.register(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	tf := targetFlags{lockFlags: t}
	if err := tf.check(); err != nil {
		return err
	}
	if c.backend != nil {
		rc, err := tf.openRemote("reload")
		if err != nil {
			return err
		}
		return c.remoteReload(rc)
	}
	h, _, err := tf.inspect()
	if err != nil {
		return err
	}
	p, err := c.provenHolder(h)
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
	fmt.Fprintf(c.stdout, "%s: sent SIGHUP to PID %d\n", h.Path, p.PID)
	return nil
}

// orphanStop stops the processes left holding a lock whose recorded holder
// is dead (instance.Holder.Orphaned): a job's processes that inherited the
// locked descriptor and outlived a SIGKILLed guard. Each is signalled only
// through a pidfd opened before instance.Holder.Confirm proved, once more,
// that it holds the lock; never by PID, never as a group.
type orphanStop struct {
	path  string
	token uint64 // the dead holder's: another token means a new holder
	procs map[procID]*proc.Process
	pids  []string // signalled, in order, for messages
}

func (c *CLI) stopOrphans(h *instance.Holder, timeout, killWait time.Duration) error {
	s := &orphanStop{path: h.Path, token: h.Record.Token, procs: map[procID]*proc.Process{}}
	defer s.close()
	c.logf("%s: %s; stopping them", h.Path, h.Reason)
	free, err := s.phase(h, syscall.SIGTERM, timeout)
	if err != nil || free {
		if free {
			fmt.Fprintf(c.stdout, "%s: stopped PID %s (left holding the lock by dead PID %d)\n", h.Path, strings.Join(s.pids, ", "), h.Record.PID)
		}
		return err
	}
	c.logf("%s: still held %v after SIGTERM to PID %s; sending SIGKILL", h.Path, timeout, strings.Join(s.pids, ", "))
	if free, err = s.phase(nil, syscall.SIGKILL, killWait); err != nil || free {
		if free {
			fmt.Fprintf(c.stdout, "%s: killed PID %s (left holding the lock by dead PID %d)\n", h.Path, strings.Join(s.pids, ", "), h.Record.PID)
		}
		return err
	}
	return exitf(1, "%s: still held %v after SIGKILL to PID %s", h.Path, killWait, strings.Join(s.pids, ", "))
}

// phase sends sig to every process signalled so far and to every proven
// holder h names, then waits up to d for the lock to be free (or taken under
// another token), signalling holders that appear meanwhile (children the
// orphans start). h nil means inspect afresh.
func (s *orphanStop) phase(h *instance.Holder, sig syscall.Signal, d time.Duration) (bool, error) {
	for _, p := range s.procs {
		if err := p.Signal(sig); err != nil && !errors.Is(err, proc.ErrGone) {
			return false, exitf(codeOf(err), "%s: PID %d: %v", s.path, p.PID, err)
		}
	}
	deadline := time.Now().Add(d)
	for {
		if h == nil {
			var err error
			if h, err = instance.Inspect(s.path); err != nil {
				return false, err
			}
		}
		if lockFreed(h, s.token) {
			return true, nil
		}
		if h.State == instance.Held && h.Orphaned && h.Record.Token == s.token {
			for _, hp := range h.Procs {
				if err := s.take(h, hp, sig); err != nil {
					return false, err
				}
			}
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		h = nil
		time.Sleep(inspectEvery)
	}
}

// take signals hp with sig if it is not signalled yet and is proven to hold
// the lock: a pidfd pins it first, then Confirm checks that it still holds
// the lock and that the PID still names it. A process that is gone or no
// longer holds the lock is passed over.
func (s *orphanStop) take(h *instance.Holder, hp instance.HolderProc, sig syscall.Signal) error {
	id := procID{hp.PID, hp.StartTicks}
	if _, done := s.procs[id]; done {
		return nil
	}
	p, err := proc.Open(hp.PID, hp.StartTicks)
	if err != nil {
		return nil // gone, or the PID names another process now
	}
	if err := h.Confirm(hp); err != nil {
		p.Close()
		return nil
	}
	if err := p.Signal(sig); err != nil && !errors.Is(err, proc.ErrGone) {
		p.Close()
		return exitf(codeOf(err), "%s: PID %d: %v", s.path, hp.PID, err)
	}
	s.procs[id] = p
	s.pids = append(s.pids, hp.String())
	return nil
}

func (s *orphanStop) close() {
	for _, p := range s.procs {
		p.Close()
	}
}

// procID is a process's identity: PID and start time.
type procID struct {
	pid   int
	start uint64
}

// lockFreed reports whether the hold under token has ended: nobody holds
// the lock, or a new holder took it under another token.
func lockFreed(h *instance.Holder, token uint64) bool {
	return h.State == instance.Free || h.State == instance.Stale ||
		h.State == instance.Held && h.Record != nil && h.Record.Token != token
}
