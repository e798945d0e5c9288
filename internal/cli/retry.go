package cli

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/health"
	"github.com/guardkit/guard/instance"
)

// errNoTime ends retries when the next attempt would start after --timeout.
var errNoTime = errors.New("no time left within --timeout")

// attempts runs the job, and again after a failure as --retries says, the
// lock held throughout and every attempt within --timeout.
func (r *runner) attempts(argv []string) (health.JobRun, error) {
	if r.opts.timeout > 0 {
		r.deadline = time.Now().Add(r.opts.timeout)
	}
	run, err := r.supervise(argv)
	for n := 1; n <= r.opts.retries && run.Result == health.ResultFailure && !r.startFailed; n++ {
		if !r.pause(n, run) {
			break
		}
		run, err = r.supervise(argv)
	}
	return run, err
}

// pause waits --retry-delay before attempt n+1. It returns false, ending
// the retries, if the attempt could not start before --timeout, or on TERM
// or INT (the run then ends with the failed attempt's outcome).
func (r *runner) pause(n int, run health.JobRun) bool {
	delay := r.opts.retryDelay
	if r.rep.out != nil {
		r.rep.drain() // this attempt's output before the next one's
	}
	if !r.deadline.IsZero() && time.Now().Add(delay).After(r.deadline) {
		r.rep.note("%s: attempt %d of %d failed (exit code %d); %v: not trying again", r.path, n, r.opts.retries+1, run.ExitCode, errNoTime)
		return false
	}
	r.rep.note("%s: attempt %d of %d failed (exit code %d); trying again in %v", r.path, n, r.opts.retries+1, run.ExitCode, delay)
	why := fmt.Sprintf("attempt %d of %d failed (exit code %d); trying again in %v, the lock held", n, r.opts.retries+1, run.ExitCode, delay)
	r.opts.sd.retrying(why)
	t := time.NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := r.lease.Err(); err != nil { // never an attempt without the lock
				r.rep.note("%s: %v; not trying again", r.path, err)
				return false
			}
			return true
		case s := <-r.signals():
			switch s {
			case syscall.SIGTERM, syscall.SIGINT:
				r.opts.sd.stopping(unix.SignalName(s.(syscall.Signal)), 0)
				r.rep.note("%s: %v during --retry-delay; not trying again", r.path, s)
				return false
			case syscall.SIGHUP: // nothing runs to reload
				r.opts.sd.idleReload(why + "; SIGHUP has no job to reload")
			}
		}
	}
}

// recordSuccess keeps the time of the job's success in the lock's record,
// for --min-interval, while the lock is still held.
func (r *runner) recordSuccess(at time.Time) {
	if sr, ok := r.lease.(instance.SuccessRecorder); ok {
		if err := sr.RecordSuccess(at); err != nil {
			r.logf("%s: record the last success: %v", r.path, err)
		}
	}
}
