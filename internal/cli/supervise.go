package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/daemon"
	"github.com/guardkit/guard/health"
	"github.com/guardkit/guard/instance"
	"github.com/guardkit/guard/job"
	"github.com/guardkit/guard/pidfile"
)

// runner runs the job of guard run while the lease holds: the job's whole
// process tree is supervised by package job; the runner adds the lock, the
// timeout, the reports and the exit status.
type runner struct {
	opts   *runOpts
	lock   instance.Locker
	lease  instance.Lease
	path   string
	name   string
	sigs   <-chan os.Signal // guard's, from its first instruction
	obs    *observer
	handle *daemon.Handle // --detach: told once the job runs

	reloads      int
	leaseStopped bool            // the tree was stopped because the lease was ending or lost
	fg           bool            // the job's group was given the terminal
	drained      <-chan struct{} // --output syslog: closed once the job's output is sent

	rep         *reporter // report.go
	deadline    time.Time // --timeout, across --retries
	startFailed bool      // the last attempt could not start the job

	jobSigs <-chan os.Signal // sigs through the notifier: see signals
}

// errTimeout is the cause of a job stopped by --timeout.
var errTimeout = errors.New("--timeout expired")

// inheritor is a lease whose lock a child process can hold too (the local
// file lock); a backend without one runs the job without it.
type inheritor interface {
	Inherit() (*os.File, error)
}

// enver is a lease with variables of its own for the job (etcd's
// ETCD_LOCK_KEY and ETCD_LOCK_REV).
type enver interface {
	Env() []string
}

// run starts the job, supervises it and returns guard's exit status. The
// lock is released only once the job's whole tree is gone, and the run's
// report is written after that, so it never delays the release.
func (r *runner) run(argv []string) error {
	if r.rep == nil {
		r.rep = r.opts.c.newReporter(&r.opts.reportOpts, r.name, r.opts.detach)
	}
	var pf *pidfile.File
	if r.opts.pidfile != "" {
		var err error
		if pf, err = pidfile.Write(r.opts.pidfile, os.Getpid(), 0o644); err != nil {
			r.releaseLease()
			return fmt.Errorf("write PID file: %w", err)
		}
	}
	run, err := r.attempts(argv)
	if run.Result == health.ResultSuccess {
		r.recordSuccess(run.Finished)
	}
	// Removed while the lock is still held, and only if it is ours.
	if pf != nil {
		if rerr := pf.Remove(); rerr != nil {
			r.logf("%v", rerr)
		}
	}
	r.releaseLease()
	r.obs.state.Released()
	r.obs.report(run)
	return err
}

func (r *runner) releaseLease() {
	if err := r.lease.Release(); err != nil {
		r.logf("%v", err)
	}
}

// supervise runs the job to its end and returns its outcome.
func (r *runner) supervise(argv []string) (health.JobRun, error) {
	j, err := r.start(argv)
	r.startFailed = err != nil
	if err != nil {
		run := health.JobRun{Result: health.ResultFailure, ExitCode: codeOf(err), Finished: time.Now()}
		r.obs.jobEnded(run)
		return run, err
	}
	r.obs.jobStarted(j.PID())
	r.rep.started(r.obs.started)
	if r.handle != nil && r.opts.c.getenv(daemon.NotifySocketEnv) == "" {
		r.handle.Started() // the starting process exits 0 now
	}
	r.opts.sd.started(j.PID(), r.lease.Token()) // READY=1 under systemd (--notify guard)
	res := r.watch(j)
	r.opts.sd.ended(fmt.Sprintf("job PID %d ended (%v); releasing the lock", j.PID(), res.Status))
	r.drain()
	if r.fg {
		signal.Ignore(syscall.SIGTTOU)
		// Best effort: the terminal may be gone; guard exits next anyway.
		_ = unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, unix.Getpgrp())
	}
	run, err := r.outcome(res)
	r.obs.jobEnded(run)
	return run, err
}

// start builds the job's command and starts its tree.
func (r *runner) start(argv []string) (*job.Job, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	stdout, stderr, closeOutputs, err := r.rep.outputs()
	if err != nil {
		return nil, exitf(exitInternal, "%s: job output: %v", r.path, err)
	}
	defer closeOutputs() // after the start: the job has its copies
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	env, err := r.opts.sd.jobEnv(without(r.opts.c.environ(), pingURLEnv))
	if err != nil {
		return nil, err
	}
	cmd.Env = append(env,
		"GUARD_LOCK="+r.path,
		"GUARD_NAME="+r.name,
		"GUARD_TOKEN="+strconv.FormatUint(r.lease.Token(), 10))
	if e, ok := r.lease.(enver); ok {
		cmd.Env = append(cmd.Env, e.Env()...)
	}
	if in, ok := r.lease.(inheritor); ok && r.opts.leftovers != job.Ignore {
		// The job inherits the locked, read-only descriptor as fd 3: what
		// it starts holds the lock as long as it runs, even if guard is
		// SIGKILLed (the main process then gets SIGKILL, Pdeathsig).
		f, err := in.Inherit()
		if err != nil {
			return nil, err
		}
		defer f.Close()
		cmd.ExtraFiles = []*os.File{f}
		cmd.Env = append(cmd.Env, "GUARD_LOCK_FD=3")
	}
	if r.opts.output == "syslog" {
		w, drained, err := r.opts.c.toSyslog("guard/" + r.name)
		if err != nil {
			return nil, err
		}
		r.drained = drained
		// The pipe's write end lives in the job only: at its end, and its
		// children's, the forwarding ends.
		defer w.Close()
		cmd.Stdout, cmd.Stderr = w, w
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if r.fg = foregroundTTY(); r.fg {
		cmd.SysProcAttr.Foreground = true
		cmd.SysProcAttr.Ctty = 0
	}
	j, err := job.Start(context.Background(), job.Spec{
		Cmd: cmd, Signals: r.signals(), KillAfter: r.opts.killAfter, Leftovers: r.opts.leftovers, PIDNamespace: r.opts.pidns,
		OnSignal: r.onSignal,
		Logf:     func(format string, a ...any) { r.logf(r.path+": "+format, a...) },
	})
	if err != nil {
		code := 126
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			code = 127
		}
		return nil, exitf(code, "%s: cannot start %s: %v", r.path, argv[0], err)
	}
	return j, nil
}

// onSignal runs, on the job's goroutine, after each signal guard received.
func (r *runner) onSignal(sig os.Signal, err error) {
	switch sig {
	case syscall.SIGTERM, syscall.SIGINT:
		r.opts.sd.stopping(unix.SignalName(sig.(syscall.Signal)), r.opts.killAfter)
	case syscall.SIGHUP:
		r.reloads++
		r.obs.state.Reload(err == nil, time.Now())
		r.opts.sd.reloaded(err)
		if err == nil {
			r.logf("%s: SIGHUP forwarded to the job (reload %d)", r.path, r.reloads)
		} else {
			r.logf("%s: forward SIGHUP: %v", r.path, err)
		}
	}
}

// foregroundTTY reports whether stdin is a terminal whose foreground process
// group is guard's: then the job gets the terminal, as a shell would give it.
func foregroundTTY() bool {
	pgrp, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}

// watch waits for the job's end, stopping it on --timeout and when the lock
// is lost. A file lock that is lost is taken again if it can be; a renewed
// (distributed) lease cannot be: its tree is stopped when the lease is about
// to end and killed when it ends, before the server can give it away.
func (r *runner) watch(j *job.Job) job.Result {
	var timeout <-chan time.Time
	if !r.deadline.IsZero() {
		t := time.NewTimer(time.Until(r.deadline))
		defer t.Stop()
		timeout = t.C
	}
	lost := r.lease.Lost()
	var jeopardy, ending <-chan struct{}
	renewed, isRenewed := r.lease.(instance.Renewed)
	if isRenewed {
		jeopardy, ending = renewed.Jeopardy(), renewed.Ending()
	}
	if si, ok := r.lock.(serverInfo); ok {
		go func() { // a report only: never on the job's path
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if v, c, err := si.ServerInfo(ctx); err == nil {
				r.obs.state.SetLeaseServer(v, c)
			}
		}()
	}
	if rr, ok := r.lease.(instance.RenewalReporter); ok {
		rr.ReportRenewals(func(n instance.Renewal) {
			r.obs.state.LeaseRenewal(n.Err == nil, n.RTT, n.TTL, n.Deadline)
		})
	}
	var requests <-chan instance.Request
	if c, ok := r.lease.(instance.Controlled); ok {
		requests = c.Requests()
	}
	for {
		select {
		case <-j.Done():
			if r.leaseStopped {
				// How long before the lease's deadline the whole tree was gone.
				r.obs.state.LeaseSlack(time.Until(r.obs.state.LeaseState().Deadline))
			}
			return j.Wait()
		case <-timeout:
			r.logf("%s: job PID %d still running after --timeout %v; stopping its process tree", r.path, j.PID(), r.opts.timeout)
			r.opts.sd.tell("stopping: --timeout %v expired", r.opts.timeout)
			j.Stop(errTimeout)
		case q := <-requests:
			r.onRequest(j, q)
		case <-jeopardy:
			jeopardy = nil
			r.obs.state.SetReady(false)
			r.obs.state.LeaseJeopardy()
			r.opts.sd.unhealthy("lease renewal overdue; not ready")
			r.logf("%s: lease renewal overdue; not ready", r.path)
		case <-ending:
			ending = nil
			r.leaseStopped = true
			r.obs.state.LeaseSignal("TERM")
			r.opts.sd.unhealthy("lease about to end without renewal; stopping the job")
			r.logf("%s: lease about to end without renewal; stopping the job's process tree", r.path)
			j.Stop(fmt.Errorf("%w: lease about to end without renewal", errLost))
		case <-lost:
			if !isRenewed {
				lost = r.relock(j)
				continue
			}
			lost = nil
			r.leaseStopped = true
			r.obs.state.Lost()
			r.obs.state.LeaseLost(lossReason(r.lease.Err()))
			r.obs.state.LeaseSignal("KILL")
			r.opts.sd.unhealthy(fmt.Sprintf("lost the lock (%v); killing the job", r.lease.Err()))
			r.logf("%v; killing the job's process tree", r.lease.Err())
			j.Kill(fmt.Errorf("%w: %v", errLost, r.lease.Err()))
		}
	}
}

// serverInfo is a Locker that can say which server keeps it (etcd).
type serverInfo interface {
	ServerInfo(ctx context.Context) (version, cluster string, err error)
}

// lossReason names why a renewed lease was lost, for
// guard_lease_lost_total.
func lossReason(err error) string {
	switch {
	case errors.Is(err, instance.ErrLeaseDeadline):
		return "deadline"
	case errors.Is(err, instance.ErrLeaseExpired):
		return "expired"
	case errors.Is(err, instance.ErrLeaseRevoked):
		return "revoked"
	}
	return "other"
}

// errStopRequested is the cause of a job stopped by guard stop from another
// host.
var errStopRequested = errors.New("stop requested")

// onRequest acts on a stop or reload asked through the lock's backend
// (guard stop or guard reload on another host).
func (r *runner) onRequest(j *job.Job, q instance.Request) {
	if !q.Reload {
		r.logf("%s: stop requested through the lock; stopping the job's process tree", r.path)
		r.opts.sd.stopping("stop requested through the lock", r.opts.killAfter)
		j.Stop(errStopRequested)
		return
	}
	r.opts.sd.reloading()
	err := j.Signal(syscall.SIGHUP) // counted and logged by onSignal
	if q.Done != nil {
		q.Done(err)
	}
}

// relockWait bounds the wait to take a lost lock again.
const relockWait = 500 * time.Millisecond

// errLost is the cause of a job stopped because its lock was lost.
var errLost = errors.New("lost the lock")

// relock reacts to a lost lease (the lock file deleted or replaced, or the
// lock dropped by a process of the job): it takes the lock again, on the
// file now at the path, so no second run can start; if it cannot, it stops
// the job. It returns the channel to watch next.
func (r *runner) relock(j *job.Job) <-chan struct{} {
	cause := r.lease.Err()
	r.obs.state.Lost()
	r.opts.sd.unhealthy(fmt.Sprintf("lost the lock (%v)", cause))
	// A run that created the new file holds its lock for a moment while it
	// checks for us (the holder of the deleted one) and then gives up: wait
	// out such a check before concluding someone else has the lock.
	ctx, cancel := context.WithTimeout(context.Background(), relockWait)
	le, err := r.lock.Lock(ctx)
	cancel()
	if err != nil {
		r.logf("%v; cannot take the lock again (%v); stopping the job's process tree", cause, err)
		r.opts.sd.unhealthy(fmt.Sprintf("lost the lock (%v); cannot take it again; stopping the job", cause))
		j.Stop(fmt.Errorf("%w: %v", errLost, cause))
		return nil
	}
	old := r.lease
	r.lease = le
	if err := old.Release(); err != nil && !errors.Is(err, instance.ErrLost) {
		r.logf("%v", err)
	}
	r.obs.state.Acquired(os.Getpid(), le.Token(), le.Since(), 0)
	r.opts.sd.relocked(j.PID(), le.Token())
	r.logf("%v; took the lock again (token %d)", cause, le.Token())
	return le.Lost()
}

// outcome turns the job's end into the run's report and guard's exit
// status.
func (r *runner) outcome(res job.Result) (health.JobRun, error) {
	code := res.Status.ExitCode()
	run := health.JobRun{ExitCode: code, Duration: time.Since(r.obs.started), Finished: time.Now()}
	switch {
	case errors.Is(res.Cause, errTimeout):
		run.Result = health.ResultTimeout
	case res.Cause != nil, res.Status.Signal == syscall.SIGKILL:
		run.Result = health.ResultKilled
	case code != 0:
		run.Result = health.ResultFailure
	default:
		run.Result = health.ResultSuccess
	}
	pid := r.obs.jobPID
	switch {
	case errors.Is(res.Cause, errLost):
		return run, exitf(exitLost, "%s: %v; job PID %d stopped (%v)", r.path, res.Cause, pid, res.Status)
	case res.Status.Signal != 0:
		return run, exitf(code, "%s: job PID %d killed by %s", r.path, pid, unix.SignalName(res.Status.Signal))
	case code != 0:
		return run, exitf(code, "%s: job PID %d exited with status %d", r.path, pid, code)
	}
	return run, nil
}

// drain waits until the job's last output lines reached syslog, for at most
// two seconds.
func (r *runner) drain() {
	if r.drained == nil {
		return
	}
	select {
	case <-r.drained:
	case <-time.After(2 * time.Second):
		r.logf("%s: job output still open 2s after the job ended; not waiting for it", r.path)
	}
}

// logf logs one of guard's lines about this run.
func (r *runner) logf(format string, a ...any) { r.opts.c.logf(format, a...) }

// signals is what the job's attempts and the pauses between them read
// guard's signals from: one channel for the whole run, through the
// notifier (RELOADING=1 before a SIGHUP goes on), so that no attempt's
// reader is left behind to take a signal meant for the next.
func (r *runner) signals() <-chan os.Signal {
	if r.jobSigs == nil {
		r.jobSigs = r.opts.sd.interpose(r.sigs)
	}
	return r.jobSigs
}

// without returns env without the variables named keys.
func without(env []string, keys ...string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(keys, k) {
			out = append(out, kv)
		}
	}
	return out
}
