package job

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// resweep is how often SIGKILL is sent again, once sent, to processes that
// appeared in the tree since (forked just before their parent was killed).
const resweep = 100 * time.Millisecond

// supervisor is the state of one job's loop; only the job's goroutine
// touches it.
type supervisor struct {
	spec     *Spec
	cmd      *exec.Cmd
	res      *Result
	exited   chan<- struct{} // closed once the main process is reaped
	reaped   bool            // the main process was reaped: never signal its PID or group again
	stopping bool            // SIGTERM sent to the tree
	killing  bool            // SIGKILL sent to the tree
	over     bool
	killT    *time.Timer
	sweep    *time.Ticker
}

// loop runs until the job is over. exits reports children that exited (see
// watchExits), each to be acknowledged on ack once reaped.
func (s *supervisor) loop(ctx context.Context, exits <-chan int, ack chan<- struct{}, ctl <-chan control) {
	ctxDone := ctx.Done()
	var killC, sweepC <-chan time.Time
	defer func() {
		if s.killT != nil {
			s.killT.Stop()
		}
		if s.sweep != nil {
			s.sweep.Stop()
		}
	}()
	for !s.over {
		select {
		case pid := <-exits:
			s.reapAll()
			if pid < 0 {
				s.over = true // no children: the tree is empty
			} else if !s.over {
				ack <- struct{}{}
			}
		case sig := <-s.spec.Signals:
			s.onSignal(sig)
		case c := <-ctl:
			switch {
			case c.sig != nil:
				c.reply <- s.onSignal(c.sig)
			case c.kill:
				s.setCause(c.cause)
				s.kill()
			default:
				s.setCause(c.cause)
				s.stop()
			}
		case <-ctxDone:
			ctxDone = nil
			s.setCause(context.Cause(ctx))
			s.stop()
		case <-killC:
			s.spec.Logf("job tree still running %v after SIGTERM; sending SIGKILL", s.spec.KillAfter)
			s.kill()
		case <-sweepC:
			s.warn("SIGKILL the job's tree", s.signalTree(syscall.SIGKILL))
		}
		if s.killT != nil {
			killC = s.killT.C
		}
		if s.sweep != nil {
			sweepC = s.sweep.C
		}
	}
}

// warn logs a failed signal: the loop goes on (SIGKILL follows, and the
// tree is waited for either way).
func (s *supervisor) warn(what string, err error) {
	if err != nil {
		s.spec.Logf("%s: %v", what, err)
	}
}

func (s *supervisor) setCause(err error) {
	if s.res.Cause == nil {
		s.res.Cause = err
	}
}

// onSignal acts on a signal from the caller's channel, then tells
// OnSignal.
func (s *supervisor) onSignal(sig os.Signal) (err error) {
	switch n, _ := sig.(syscall.Signal); {
	case sig == syscall.SIGTERM || sig == syscall.SIGINT:
		s.setCause(&signalCause{sig})
		if s.stopping {
			s.kill() // a second one
		} else {
			s.stop()
		}
	case n == 0:
		return nil
	case s.reaped:
		err = s.signalTree(n)
	default:
		err = s.signalGroup(n)
	}
	if s.spec.OnSignal != nil {
		s.spec.OnSignal(sig, err)
	}
	return err
}

// stop sends SIGTERM to the tree and arms the SIGKILL timer, once.
func (s *supervisor) stop() {
	if s.stopping || s.killing {
		return
	}
	s.stopping, s.res.Stopped = true, true
	if !s.reaped {
		s.warn("SIGTERM the job's process group", s.signalGroup(syscall.SIGTERM))
	}
	s.warn("SIGTERM the job's tree", s.signalTree(syscall.SIGTERM))
	s.killT = time.NewTimer(s.spec.KillAfter)
}

// kill sends SIGKILL to the tree now and keeps sending it to newcomers.
func (s *supervisor) kill() {
	if s.killing {
		return
	}
	s.killing, s.res.Killed = true, true
	s.stopping = true
	if s.killT != nil {
		s.killT.Stop()
		s.killT = nil
	}
	if !s.reaped {
		s.warn("SIGKILL the job's process group", s.signalGroup(syscall.SIGKILL))
	}
	s.warn("SIGKILL the job's tree", s.signalTree(syscall.SIGKILL))
	s.sweep = time.NewTicker(resweep)
}

// signalGroup signals the main process's group. Call it only while the main
// process is unreaped: its PID, the group's ID, cannot be reused until then.
func (s *supervisor) signalGroup(sig syscall.Signal) error {
	err := syscall.Kill(-s.cmd.Process.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil // the group is empty: the leader is a zombie
	}
	return err
}

// reapAll reaps every exited child: the main process through cmd.Wait, the
// others by PID. It then decides whether the job is over.
func (s *supervisor) reapAll() {
	for {
		pid, err := peekExited()
		if err != nil {
			break // ECHILD: no children left at all
		}
		if pid == 0 {
			break // children remain, none has exited
		}
		if pid == s.cmd.Process.Pid && !s.reaped {
			s.reapMain()
			continue
		}
		_ = reapPID(pid) // false: another waiter got it first; nothing to do
	}
	s.decide()
}

func (s *supervisor) reapMain() {
	err := s.cmd.Wait()
	s.reaped = true
	s.res.Status = statusOf(s.cmd.ProcessState)
	close(s.exited)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		s.spec.Logf("wait for the job: %v", err)
	}
	if !hasChildren() {
		return // the common case: nothing left, and no /proc scan to learn it
	}
	left := len(descendants())
	s.res.Leftovers = left
	if left == 0 || s.stopping {
		return
	}
	switch s.spec.Leftovers {
	case Kill:
		s.spec.Logf("job PID %d ended (%v); stopping the %d process(es) it left behind", s.cmd.Process.Pid, s.res.Status, left)
		s.stopping = true
		s.warn("SIGTERM what the job left", s.signalTree(syscall.SIGTERM))
		s.killT = time.NewTimer(s.spec.KillAfter)
	case Wait:
		s.spec.Logf("job PID %d ended (%v); waiting for the %d process(es) it left behind", s.cmd.Process.Pid, s.res.Status, left)
	}
}

// decide ends the loop once the job is over.
func (s *supervisor) decide() {
	if !s.reaped {
		return
	}
	if s.spec.Leftovers == Ignore && !s.stopping {
		s.over = true
		return
	}
	s.over = !hasChildren()
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
