package health

import "time"

// Job run results: the only values of the result label of
// guard_job_runs_total. [JobRun.Result] values outside this set count as
// [ResultFailure].
const (
	// ResultSuccess: the job exited 0.
	ResultSuccess = "success"
	// ResultFailure: the job exited non-zero or died of a signal guard did
	// not send, or could not be started.
	ResultFailure = "failure"
	// ResultTimeout: guard stopped the job because --timeout expired.
	ResultTimeout = "timeout"
	// ResultKilled: the job was stopped by a signal forwarded by guard
	// (SIGTERM/SIGINT to guard) or had to be SIGKILLed.
	ResultKilled = "killed"
	// ResultSkipped: the job did not run because the lock was busy or the
	// wait for it timed out.
	ResultSkipped = "skipped"
)

// results is the fixed, ordered set of result label values.
var results = [...]string{ResultSuccess, ResultFailure, ResultTimeout, ResultKilled, ResultSkipped}

// resultIndex maps r to its index in results; unknown values map to
// ResultFailure.
func resultIndex(r string) int {
	for i, v := range results {
		if v == r {
			return i
		}
	}
	return 1 // ResultFailure
}

// JobRun is the outcome of one run of the guarded job, as recorded by
// [State.JobFinished] and [WriteTextfile].
type JobRun struct {
	// Result is one of ResultSuccess, ResultFailure, ResultTimeout,
	// ResultKilled or ResultSkipped; anything else counts as ResultFailure.
	Result string
	// ExitCode is the job's exit code (128+N if it died of signal N).
	// Ignored for ResultSkipped.
	ExitCode int
	// Duration is how long the job ran. Ignored for ResultSkipped.
	Duration time.Duration
	// Finished is when the run ended; the zero value means time.Now().
	// A success sets guard_job_last_success_timestamp_seconds to it, any
	// other result that ran guard_job_last_failure_timestamp_seconds.
	Finished time.Time
	// PingFailures and PushFailures count the run's failed reports (--ping,
	// --push), added to guard_report_failures_total in the textfile.
	PingFailures, PushFailures int
}

// normalized returns r with Result in the fixed set and Finished set.
func (r JobRun) normalized() JobRun {
	r.Result = results[resultIndex(r.Result)]
	if r.Finished.IsZero() {
		r.Finished = time.Now()
	}
	return r
}

// JobStarted records that the job is running (guard_job_running 1) since
// now (guard_job_start_timestamp_seconds). It does not make the program
// ready; call [State.SetReady] for that.
func (s *State) JobStarted() { s.JobStartedAt(time.Now()) }

// JobStartedAt is [State.JobStarted] for a job that started at t.
func (s *State) JobStartedAt(t time.Time) {
	s.update(func(n *snapshot) { n.jobRunning, n.jobStart = true, t })
}

// JobFinished records one run: it counts guard_job_runs_total{result} and
// sets guard_job_running to 0. Unless the run was skipped, it also sets
// guard_job_last_exit_code, guard_job_duration_seconds and
// guard_job_last_run_timestamp_seconds (which always describe the last run
// that actually ran); a success sets guard_job_last_success_timestamp_seconds,
// any other result guard_job_last_failure_timestamp_seconds.
func (s *State) JobFinished(run JobRun) {
	run = run.normalized()
	s.update(func(n *snapshot) {
		n.jobRunning = false
		n.jobRuns[resultIndex(run.Result)]++
		if run.Result == ResultSkipped {
			return
		}
		n.jobRan, n.jobExitCode, n.jobDuration = true, run.ExitCode, max(run.Duration, 0)
		n.jobLastRun = run.Finished
		if run.Result == ResultSuccess {
			n.jobLastSucc = run.Finished
		} else {
			n.jobLastFail = run.Finished
		}
	})
}
