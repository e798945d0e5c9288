package health

import (
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// BuildInfo labels guard_build_info. Empty fields are reported as "unknown".
// The Go version label comes from runtime.Version.
type BuildInfo struct {
	Version  string
	Revision string
}

// NewRegistry returns a private registry (never the default one) holding the
// Go and process collectors, guard_build_info{version,goversion,revision}
// (always 1, labels fixed here), and the guard_* metrics read from s at each
// scrape:
//
//	guard_lock_held                             gauge: 1 while held and not lost
//	guard_lock_waiting                          gauge: 1 while a standby waits
//	guard_lock_acquisitions_total               counter
//	guard_lock_contended_total                  counter: attempts that found it busy
//	guard_lock_lost_total                       counter: holds whose path stopped naming the lock
//	guard_lock_wait_seconds                     histogram: wait before each acquisition
//	guard_reloads_total{result}                 counter: result is "success" or "failure"
//	guard_last_reload_success_timestamp_seconds gauge: Unix time, 0 if none yet
//	guard_job_running                           gauge: 1 while the job runs
//	guard_job_runs_total{result}                counter: result in the JobRun.Result set
//	guard_job_last_exit_code                    gauge: absent until a run finished
//	guard_job_duration_seconds                  gauge: last run's duration, absent until then
//	guard_job_last_success_timestamp_seconds    gauge: Unix time, 0 if none yet
//
// and, once a renewed lease (etcd) reported a renewal:
//
//	guard_lease_renewals_total{result}          counter: result is "success" or "failure"
//	guard_lease_renewal_rtt_seconds             histogram: round trip of acknowledged renewals
//	guard_lease_ttl_seconds                     gauge: TTL granted, while a lease is held
//	guard_lease_deadline_timestamp_seconds      gauge: Unix time the job's tree is killed unless renewed, while held
//	guard_lease_jeopardy                        gauge: 1 once renewal was overdue during this hold
//	guard_lease_lost_total{reason}              counter: reason is deadline, expired, revoked or other
//	guard_lease_tree_signals_total{signal}      counter: TERM (lease ending) or KILL (lease lost) to the job's tree
//	guard_lease_kill_slack_seconds              gauge: deadline minus the moment the stopped tree was gone
//	guard_lease_server_info{version,cluster_id} gauge: 1, once the server was asked
//
// Every label value comes from a fixed set, so the number of series is
// constant. Scrapes only load s's snapshot atomically. The caller may
// register more collectors. NewRegistry panics if s is nil.
func NewRegistry(s *State, info BuildInfo) *prometheus.Registry {
	if s == nil {
		panic("health: NewRegistry with nil State")
	}
	reg := prometheus.NewRegistry()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "guard_build_info",
		Help: "Build information of the running binary; always 1.",
		ConstLabels: prometheus.Labels{
			"version":   orUnknown(info.Version),
			"goversion": runtime.Version(),
			"revision":  orUnknown(info.Revision),
		},
	})
	build.Set(1)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build,
		stateCollector{s},
	)
	return reg
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

var (
	descLockHeld     = newDesc("guard_lock_held", "1 while this process holds the lock and its path still names the locked file, else 0.")
	descLockWaiting  = newDesc("guard_lock_waiting", "1 while this process waits for a busy lock as a standby, else 0.")
	descAcquisitions = newDesc("guard_lock_acquisitions_total", "Times the lock was acquired.")
	descContended    = newDesc("guard_lock_contended_total", "Attempts to take the lock that found it held by another process.")
	descLost         = newDesc("guard_lock_lost_total", "Holds during which the lock path stopped naming the locked file.")
	descWait         = newDesc("guard_lock_wait_seconds", "Time waited for the lock before each acquisition.")
	descReloads      = newDesc("guard_reloads_total", "Reloads (SIGHUP) by result.", "result")
	descReloadOK     = newDesc("guard_last_reload_success_timestamp_seconds", "Unix time of the last successful reload, 0 if none.")
	descJobRunning   = newDesc(nameJobRunning, helpJobRunning)
	descJobRuns      = newDesc(nameJobRuns, helpJobRuns, "result")
	descJobExit      = newDesc(nameJobExit, helpJobExit)
	descJobDuration  = newDesc(nameJobDuration, helpJobDuration)
	descJobOK        = newDesc(nameJobOK, helpJobOK)
	descJobStart     = newDesc(nameJobStart, helpJobStart)
	descJobLastRun   = newDesc(nameJobLastRun, helpJobLastRun)
	descJobLastFail  = newDesc(nameJobLastFail, helpJobLastFail)
	descRenewals     = newDesc("guard_lease_renewals_total", "Renewals of the lock's lease (etcd) by result.", "result")
	descRTT          = newDesc("guard_lease_renewal_rtt_seconds", "Round trip of acknowledged lease renewals.")
	descTTL          = newDesc("guard_lease_ttl_seconds", "TTL the server granted the held lease.")
	descDeadline     = newDesc("guard_lease_deadline_timestamp_seconds", "Unix time at which the job's tree is killed unless the lease is renewed before.")
	descJeopardy     = newDesc("guard_lease_jeopardy", "1 once renewal of the held lease was overdue (not ready), else 0.")
	descLeaseLost    = newDesc("guard_lease_lost_total", "Holds whose lease was lost, by reason (deadline, expired, revoked, other).", "reason")
	descTreeSignals  = newDesc("guard_lease_tree_signals_total", "Signals sent to the job's whole tree because the lease was ending (TERM) or lost (KILL).", "signal")
	descSlack        = newDesc("guard_lease_kill_slack_seconds", "For the last job stopped because its lease ended: the lease's deadline minus the moment its whole tree was gone.")
	descServer       = newDesc("guard_lease_server_info", "The lock server's version and cluster id; always 1.", "version", "cluster_id")
)

// Job metric names and help, shared by /metrics and textfiles so that
// node_exporter sees one HELP per name.
const (
	nameJobRuns     = "guard_job_runs_total"
	nameJobExit     = "guard_job_last_exit_code"
	nameJobDuration = "guard_job_duration_seconds"
	nameJobOK       = "guard_job_last_success_timestamp_seconds"
	nameJobStart    = "guard_job_start_timestamp_seconds"
	nameJobLastRun  = "guard_job_last_run_timestamp_seconds"
	nameJobLastFail = "guard_job_last_failure_timestamp_seconds"
	nameJobRunning  = "guard_job_running"
	nameReportFail  = "guard_report_failures_total"
	helpJobRuns     = "Runs of the guarded job by result (success, failure, timeout, killed, skipped)."
	helpJobExit     = "Exit code of the last run that ran (128+N for signal N)."
	helpJobDuration = "Duration of the last run that ran."
	helpJobOK       = "Unix time the last successful run finished, 0 if none."
	helpJobStart    = "Unix time the current or last run's job started."
	helpJobLastRun  = "Unix time the last run that ran finished (any result but skipped), 0 if none."
	helpJobLastFail = "Unix time the last run that ran and did not succeed finished, 0 if none."
	helpJobRunning  = "1 while the guarded job runs, else 0."
	helpReportFail  = "Reports of runs (--ping, --push) that failed, by target."
)

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// stateCollector turns a State snapshot into metrics at scrape time.
type stateCollector struct{ s *State }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descLockHeld, descLockWaiting, descAcquisitions, descContended, descLost, descWait,
		descReloads, descReloadOK, descJobRunning, descJobRuns, descJobExit, descJobDuration, descJobOK,
		descJobStart, descJobLastRun, descJobLastFail,
		descRenewals, descRTT, descTTL, descDeadline, descJeopardy, descLeaseLost, descTreeSignals, descSlack, descServer,
	} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.s.load()
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	counter := func(d *prometheus.Desc, v uint64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
	}
	gauge(descLockHeld, b2f(n.lock.Held && !n.lock.Lost))
	gauge(descLockWaiting, b2f(n.lock.Waiting))
	counter(descAcquisitions, n.acquisitions)
	counter(descContended, n.contended)
	counter(descLost, n.lostTotal)
	buckets := make(map[float64]uint64, len(waitBuckets))
	var cum uint64
	for i, ub := range waitBuckets {
		cum += n.waitBucket[i]
		buckets[ub] = cum
	}
	ch <- prometheus.MustNewConstHistogram(descWait, n.waitCount, n.waitSum.Seconds(), buckets)

	counter(descReloads, n.reloads.Total-n.reloads.Failed, "success")
	counter(descReloads, n.reloads.Failed, "failure")
	gauge(descReloadOK, unixSeconds(n.reloads.LastSuccess))

	gauge(descJobRunning, b2f(n.jobRunning))
	for i, r := range results {
		counter(descJobRuns, n.jobRuns[i], r)
	}
	if n.jobRan {
		gauge(descJobExit, float64(n.jobExitCode))
		gauge(descJobDuration, n.jobDuration.Seconds())
	}
	gauge(descJobOK, unixSeconds(n.jobLastSucc))
	if !n.jobStart.IsZero() {
		gauge(descJobStart, unixSeconds(n.jobStart))
	}
	gauge(descJobLastRun, unixSeconds(n.jobLastRun))
	gauge(descJobLastFail, unixSeconds(n.jobLastFail))

	if l := n.lease; l.Active || l.Renewals+l.Failures > 0 {
		counter(descRenewals, l.Renewals, "success")
		counter(descRenewals, l.Failures, "failure")
		rtt := make(map[float64]uint64, len(rttBuckets))
		var cum uint64
		for i, ub := range rttBuckets {
			cum += n.rttBucket[i]
			rtt[ub] = cum
		}
		ch <- prometheus.MustNewConstHistogram(descRTT, n.rttCount, n.rttSum.Seconds(), rtt)
		if l.Active {
			gauge(descTTL, l.TTL.Seconds())
			gauge(descDeadline, unixSeconds(l.Deadline))
			gauge(descJeopardy, b2f(l.Jeopardy))
		}
		for i, r := range leaseReasons {
			counter(descLeaseLost, n.leaseLost[i], r)
		}
		for i, sig := range leaseSignals {
			counter(descTreeSignals, n.leaseSignals[i], sig)
		}
		if n.leaseSlackSet {
			gauge(descSlack, n.leaseSlack.Seconds())
		}
		if n.serverVersion != "" {
			gauge(descServer, 1, n.serverVersion, n.serverCluster)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// unixSeconds is t as fractional Unix seconds, 0 for the zero time.
func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}
