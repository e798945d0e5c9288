package health

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/guardkit/guard/internal/safepath"
)

// maxPrevious bounds how much of a previous textfile is read.
const maxPrevious = 1 << 20

// WriteTextfile records run in dir/name.prom for node_exporter's textfile
// collector, labelled name="<name>" (the file's only label value besides the
// fixed result set):
//
//	guard_job_runs_total{name,result}                counter, one series per result
//	guard_job_last_exit_code{name}                   gauge, once a run has run
//	guard_job_duration_seconds{name}                 gauge, the last run's duration
//	guard_job_last_success_timestamp_seconds{name}   gauge, Unix time, 0 if none
//	guard_job_last_run_timestamp_seconds{name}       gauge, Unix time, 0 if none
//	guard_job_last_failure_timestamp_seconds{name}   gauge, Unix time, 0 if none
//	guard_job_running{name}                          gauge, 0 (see WriteTextfileStarted)
//	guard_job_start_timestamp_seconds{name}          gauge, once a job started
//	guard_report_failures_total{name,target}         counter, target ping or push
//
// Counters accumulate: the previous dir/name.prom is read and added to. A
// missing, unreadable or unparsable previous file (or one holding a symbolic
// link, a negative count, ...) counts from zero and does not fail the write.
// A failed run carries the previous last-success time over, and a success
// the previous last-failure time; a skipped run (ResultSkipped) only counts,
// keeping everything else as it was, guard_job_running included (the run
// that holds the lock may still be running).
//
// dir is resolved without following a symbolic link that another user
// could have planted (guard/internal/safepath): every directory on the way
// must be root's or the caller's and not writable by others unless sticky,
// and links are followed only when root or the caller owns them; otherwise
// the error matches safepath.ErrUnsafe. The previous file is read only if it
// is a regular file of root or the caller.
//
// The file is replaced atomically: written to a temporary file in dir whose
// name does not end in ".prom" (so node_exporter ignores it), created with
// O_EXCL|O_NOFOLLOW, synced, then renamed over dir/name.prom; the directory
// is then synced, best effort. The temporary file is removed on failure.
// name must be non-empty, at most 200 bytes of valid UTF-8, and not contain
// '/' or NUL, nor be "." or "..". Concurrent writers for one name must be
// serialized by the caller (guard holds the job's lock): otherwise one run
// may be lost, though the file is never torn.
func WriteTextfile(dir, name string, run JobRun) error {
	run = run.normalized()
	return writeTextfile(dir, name, func(t *tally) { t.add(run) })
}

// WriteTextfileStarted records in dir/name.prom, under the same rules as
// [WriteTextfile], that the job started at started: guard_job_running 1 and
// guard_job_start_timestamp_seconds, everything else carried over. A hung
// job is thus visible without a live /metrics; WriteTextfile at the end of
// the run sets guard_job_running back to 0.
func WriteTextfileStarted(dir, name string, started time.Time) error {
	return writeTextfile(dir, name, func(t *tally) { t.running, t.start = true, unixSeconds(started) })
}

func writeTextfile(dir, name string, change func(*tally)) error {
	if err := checkTextfileName(name); err != nil {
		return err
	}
	d, err := safepath.OpenDir(dir, safepath.Options{})
	if err != nil {
		return fmt.Errorf("health: textfile directory: %w", err)
	}
	defer d.Close()
	file := name + ".prom"
	t := readTally(d, file, name)
	change(&t)
	var buf bytes.Buffer
	for _, mf := range t.families(name) {
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			return fmt.Errorf("health: encode textfile %q: %w", filepath.Join(dir, file), err)
		}
	}
	_, err = d.WriteFile(file, buf.Bytes(), 0o644)
	if err != nil && !errors.Is(err, safepath.ErrNotSynced) { // the sync is best effort
		return fmt.Errorf("health: write textfile: %w", err)
	}
	return nil
}

func checkTextfileName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 200 ||
		!utf8.ValidString(name) || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("health: invalid textfile name %q", name)
	}
	return nil
}

// tally is what a textfile records across runs.
type tally struct {
	runs        [len(results)]uint64
	ran         bool // exitCode and duration are known
	exitCode    float64
	duration    float64 // seconds
	lastSuccess float64 // Unix seconds, 0 if none
	lastRun     float64 // Unix seconds, 0 if none
	lastFailure float64 // Unix seconds, 0 if none
	running     bool
	start       float64 // Unix seconds, 0 if no job ever started
	failures    [len(reportTargets)]uint64
}

// reportTargets are the values of guard_report_failures_total's target
// label.
var reportTargets = [...]string{"ping", "push"}

func (t *tally) add(run JobRun) {
	t.runs[resultIndex(run.Result)]++
	t.failures[0] += uint64(max(run.PingFailures, 0))
	t.failures[1] += uint64(max(run.PushFailures, 0))
	if run.Result == ResultSkipped {
		return
	}
	t.running = false
	t.ran, t.exitCode, t.duration = true, float64(run.ExitCode), max(run.Duration, 0).Seconds()
	t.lastRun = unixSeconds(run.Finished)
	if run.Result == ResultSuccess {
		t.lastSuccess = t.lastRun
	} else {
		t.lastFailure = t.lastRun
	}
}

// readTally returns the tally recorded in file in d for name, or a zero
// tally if it cannot be read or parsed.
func readTally(d *safepath.Dir, file, name string) tally {
	f, err := d.OpenFile(file, os.O_RDONLY, 0)
	if err != nil {
		return tally{}
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(io.LimitReader(f, maxPrevious))
	if err != nil {
		return tally{}
	}
	t, err := parseTally(mfs, name)
	if err != nil {
		return tally{}
	}
	return t
}

var errBadTextfile = errors.New("bad textfile")

// counts reads name's series of the counter family mf, labelled key with
// one of values each (at most one series a value), into out.
func counts(mf *dto.MetricFamily, name, key string, values []string, out []uint64) error {
	ms, err := series(mf, dto.MetricType_COUNTER, name)
	if err != nil {
		return err
	}
	seen := make([]bool, len(values))
	for _, m := range ms {
		v, i := m.GetCounter().GetValue(), slices.Index(values, label(m, key))
		if i < 0 || seen[i] || v < 0 || v != math.Trunc(v) || v >= 1<<63 {
			return errBadTextfile
		}
		out[i], seen[i] = uint64(v), true
	}
	return nil
}

// parseTally extracts name's series; any malformed series spoils it all.
func parseTally(mfs map[string]*dto.MetricFamily, name string) (tally, error) {
	var t tally
	if err := counts(mfs[nameJobRuns], name, "result", results[:], t.runs[:]); err != nil {
		return tally{}, err
	}
	if err := counts(mfs[nameReportFail], name, "target", reportTargets[:], t.failures[:]); err != nil {
		return tally{}, err
	}
	var err error
	gauge := func(n string) (v float64, ok bool) {
		ms, e := series(mfs[n], dto.MetricType_GAUGE, name)
		if len(ms) > 0 {
			v = ms[0].GetGauge().GetValue()
		}
		if e != nil || len(ms) > 1 || math.IsNaN(v) || math.IsInf(v, 0) {
			err = errBadTextfile
		}
		return v, len(ms) == 1
	}
	var okExit, okDur bool
	t.exitCode, okExit = gauge(nameJobExit)
	t.duration, okDur = gauge(nameJobDuration)
	t.lastSuccess, _ = gauge(nameJobOK)
	t.lastRun, _ = gauge(nameJobLastRun)
	t.lastFailure, _ = gauge(nameJobLastFail)
	t.start, _ = gauge(nameJobStart)
	running, _ := gauge(nameJobRunning)
	t.running = running == 1
	t.ran = okExit && okDur
	if err != nil || t.lastSuccess < 0 || t.duration < 0 || t.lastRun < 0 || t.lastFailure < 0 || t.start < 0 || (running != 0 && running != 1) {
		return tally{}, errBadTextfile
	}
	return t, nil
}

// series returns mf's metrics labelled name=name; an error if mf is not of
// type typ.
func series(mf *dto.MetricFamily, typ dto.MetricType, name string) ([]*dto.Metric, error) {
	if mf == nil {
		return nil, nil
	}
	if mf.GetType() != typ {
		return nil, errBadTextfile
	}
	var out []*dto.Metric
	for _, m := range mf.GetMetric() {
		if label(m, "name") == name {
			out = append(out, m)
		}
	}
	return out, nil
}

func label(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

// families renders t as metric families, sorted by name.
func (t *tally) families(name string) []*dto.MetricFamily {
	gauge := func(n, help string, v float64) *dto.MetricFamily {
		return family(n, help, dto.MetricType_GAUGE, &dto.Metric{
			Label: labels("name", name),
			Gauge: &dto.Gauge{Value: &v},
		})
	}
	var out []*dto.MetricFamily
	if t.ran {
		out = append(out, gauge(nameJobDuration, helpJobDuration, t.duration),
			gauge(nameJobExit, helpJobExit, t.exitCode))
	}
	out = append(out, gauge(nameJobLastFail, helpJobLastFail, t.lastFailure),
		gauge(nameJobLastRun, helpJobLastRun, t.lastRun),
		gauge(nameJobOK, helpJobOK, t.lastSuccess))
	out = append(out, gauge(nameJobRunning, helpJobRunning, b2f(t.running)))
	runs := family(nameJobRuns, helpJobRuns, dto.MetricType_COUNTER)
	for i, r := range results {
		v := float64(t.runs[i])
		runs.Metric = append(runs.Metric, &dto.Metric{
			Label:   labels("name", name, "result", r),
			Counter: &dto.Counter{Value: &v},
		})
	}
	out = append(out, runs)
	if t.start > 0 {
		out = append(out, gauge(nameJobStart, helpJobStart, t.start))
	}
	fails := family(nameReportFail, helpReportFail, dto.MetricType_COUNTER)
	for i, target := range reportTargets {
		v := float64(t.failures[i])
		fails.Metric = append(fails.Metric, &dto.Metric{
			Label:   labels("name", name, "target", target),
			Counter: &dto.Counter{Value: &v},
		})
	}
	return append(out, fails)
}

func family(name, help string, typ dto.MetricType, ms ...*dto.Metric) *dto.MetricFamily {
	return &dto.MetricFamily{Name: &name, Help: &help, Type: &typ, Metric: ms}
}

func labels(kv ...string) []*dto.LabelPair {
	out := make([]*dto.LabelPair, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, &dto.LabelPair{Name: &kv[i], Value: &kv[i+1]})
	}
	return out
}
