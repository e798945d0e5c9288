package job

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// Policy says what happens to the rest of the tree when the main process
// ends.
type Policy int

const (
	// Kill stops what is left: SIGTERM, SIGKILL after KillAfter, and waits
	// until every process is gone.
	Kill Policy = iota
	// Wait waits until every process of the tree has ended by itself.
	Wait
	// Ignore ends the job with its main process; the rest runs on.
	Ignore
)

var policyNames = [...]string{Kill: "kill", Wait: "wait", Ignore: "ignore"}

func (p Policy) String() string {
	if p >= 0 && int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// ParsePolicy parses "kill", "wait" or "ignore".
func ParsePolicy(s string) (Policy, error) {
	for p, n := range policyNames {
		if n == s {
			return Policy(p), nil
		}
	}
	return 0, fmt.Errorf("unknown leftovers policy %q (want kill, wait or ignore)", s)
}

// DefaultKillAfter is the time between SIGTERM and SIGKILL when
// Spec.KillAfter is zero.
const DefaultKillAfter = 10 * time.Second

// Spec describes a job.
type Spec struct {
	// Cmd is the main process. Its stdio, Env and ExtraFiles are the
	// caller's; give it *os.File stdio (or set WaitDelay) so that processes
	// left behind cannot keep its Wait from returning. Start adds Setpgid
	// (unless SysProcAttr asks for Setsid) and keeps the rest of
	// SysProcAttr (Pdeathsig, Foreground).
	Cmd *exec.Cmd
	// Signals, if set, is the caller's signal.Notify channel. SIGTERM and
	// SIGINT stop the tree (a second one kills it); any other signal is
	// forwarded: to the main process's group while it runs, then to every
	// remaining process.
	Signals <-chan os.Signal
	// KillAfter is the time between SIGTERM and SIGKILL (default
	// DefaultKillAfter).
	KillAfter time.Duration
	// Leftovers says what happens to the rest of the tree when the main
	// process ends.
	Leftovers Policy
	// OnSignal, if set, is called after each signal from Signals has been
	// acted on, with the error of forwarding it (nil when it reached the
	// job, and for SIGTERM and SIGINT). It runs on the job's goroutine: keep
	// it short.
	OnSignal func(os.Signal, error)
	// PIDNamespace runs the command in a PID namespace of its own, under
	// an init that is this very program re-executed (see RunInit, which the
	// program must call first thing in main). If this process is
	// SIGKILLed, the init dies (give Cmd Pdeathsig), and with it, by the
	// kernel's hand, every process of the tree: nothing outlives the
	// supervisor. It needs CAP_SYS_ADMIN (root), and does not go with
	// Leftovers Ignore.
	PIDNamespace bool
	// Logf, if set, receives one line per notable event (a stop, leftovers,
	// escalation to SIGKILL). It runs on the job's goroutine.
	Logf func(format string, args ...any)
}

// ExitStatus is how the main process ended.
type ExitStatus struct {
	Code   int            // exit code when it exited; -1 when killed by a signal
	Signal syscall.Signal // the signal that killed it; 0 when it exited
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

// Result is how a job ended.
type Result struct {
	// Status is the main process's.
	Status ExitStatus
	// Cause is why the tree was stopped (Stop's or Kill's cause, the
	// context's cause, or an error naming the signal received); nil when
	// the main process ended by itself.
	Cause error
	// Stopped is true when SIGTERM was sent to the tree because of Cause;
	// Killed when SIGKILL was.
	Stopped, Killed bool
	// Leftovers is how many processes of the tree still ran when the main
	// process ended.
	Leftovers int
}

// ErrSignal is matched by the Cause of a job stopped by a signal from
// Spec.Signals; the error's text names the signal.
var ErrSignal = errors.New("stopped by signal")

type signalCause struct{ sig os.Signal }

func (c *signalCause) Error() string        { return "received " + signalName(c.sig) }
func (c *signalCause) Is(target error) bool { return target == ErrSignal }

// Signal returns the signal behind a cause matching ErrSignal.
func Signal(cause error) (syscall.Signal, bool) {
	var c *signalCause
	if errors.As(cause, &c) {
		s, ok := c.sig.(syscall.Signal)
		return s, ok
	}
	return 0, false
}

// Job is a running job. Its methods are safe for concurrent use.
type Job struct {
	spec   Spec
	ctl    chan control
	exited chan struct{}
	done   chan struct{}
	result Result
}

type control struct {
	kill  bool
	cause error
	sig   os.Signal  // Signal: act on sig as if it came from Spec.Signals
	reply chan error // Signal's answer
}

// Start starts spec.Cmd and supervises its tree until it is over. When ctx
// is done the job is stopped with context.Cause(ctx). It returns an error,
// and no Job, when the main process cannot be started.
func Start(ctx context.Context, spec Spec) (*Job, error) {
	if spec.KillAfter <= 0 {
		spec.KillAfter = DefaultKillAfter
	}
	if spec.Logf == nil {
		spec.Logf = func(string, ...any) {}
	}
	j := &Job{spec: spec, ctl: make(chan control, 8), exited: make(chan struct{}), done: make(chan struct{})}
	started := make(chan error, 1)
	go j.run(ctx, started)
	if err := <-started; err != nil {
		return nil, err
	}
	return j, nil
}

// PID returns the main process's PID. After Done it may name another
// process.
func (j *Job) PID() int { return j.spec.Cmd.Process.Pid }

// Stop sends SIGTERM to the whole tree, and SIGKILL KillAfter later, with
// cause as the Result's Cause (the first cause given wins). It does not wait.
func (j *Job) Stop(cause error) { j.send(control{cause: cause}) }

// Kill sends SIGKILL to the whole tree now, with cause as the Result's
// Cause if none was given before. It does not wait.
func (j *Job) Kill(cause error) { j.send(control{kill: true, cause: cause}) }

// Signal acts on sig as on a signal from Spec.Signals (TERM and INT stop the
// tree, others are forwarded, then OnSignal runs) and returns the error of
// forwarding it; an error matching ErrDone once the job is over.
func (j *Job) Signal(sig os.Signal) error {
	reply := make(chan error, 1)
	select {
	case j.ctl <- control{sig: sig, reply: reply}:
	case <-j.done:
		return ErrDone
	}
	select {
	case err := <-reply:
		return err
	case <-j.done:
		return ErrDone
	}
}

// ErrDone is returned by Signal once the job is over.
var ErrDone = errors.New("job is over")

func (j *Job) send(c control) {
	select {
	case j.ctl <- c:
	case <-j.done:
	}
}

// Done is closed once the job is over: by its Leftovers policy, or, after a
// Stop or Kill, once every process of the tree is gone.
func (j *Job) Done() <-chan struct{} { return j.done }

// Exited is closed once the main process has ended and was reaped; the
// rest of the tree may still run (see Done).
func (j *Job) Exited() <-chan struct{} { return j.exited }

// Wait waits until the job is over and returns how it ended.
func (j *Job) Wait() Result {
	<-j.done
	return j.result
}

func (j *Job) run(ctx context.Context, started chan<- error) {
	// The main process's parent is this thread, not this process: keep the
	// thread for the job's life, so a Pdeathsig the caller set fires only
	// when this process really dies.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(j.done)
	if err := setSubreaper(); err != nil {
		started <- err
		return
	}
	cmd := j.spec.Cmd
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if !cmd.SysProcAttr.Setsid {
		cmd.SysProcAttr.Setpgid, cmd.SysProcAttr.Pgid = true, 0
	}
	var report *os.File
	if j.spec.PIDNamespace {
		var err error
		if report, err = wrapInit(cmd, &j.spec); err != nil {
			started <- err
			return
		}
	}
	if err := cmd.Start(); err != nil {
		if report != nil {
			report.Close()
			cmd.ExtraFiles[len(cmd.ExtraFiles)-1].Close()
		}
		started <- err
		return
	}
	if report != nil {
		if err := awaitInit(cmd, report); err != nil {
			started <- err
			return
		}
	}
	started <- nil
	s := &supervisor{spec: &j.spec, cmd: cmd, res: &j.result, exited: j.exited}
	exits, ack, quit := make(chan int), make(chan struct{}), make(chan struct{})
	defer close(quit)
	go watchExits(exits, ack, quit)
	s.loop(ctx, exits, ack, j.ctl)
}

// SignalCause returns a cause that matches ErrSignal and names sig, for a
// caller that stops a job (or a wait before it) on a signal it received.
func SignalCause(sig os.Signal) error { return &signalCause{sig} }
