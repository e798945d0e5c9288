package health

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/guardkit/guard/internal/guardtest"
)

// readProm parses dir/name.prom back with expfmt.
func readProm(t *testing.T, dir, name string) map[string]*dto.MetricFamily {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, name+".prom"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("parse %s.prom: %v", name, err)
	}
	return mfs
}

// value returns the value of the series of family n whose labels include
// kv, or NaN if there is none.
func value(mfs map[string]*dto.MetricFamily, n string, kv ...string) float64 {
	for _, m := range mfs[n].GetMetric() {
		match := true
		for i := 0; i+1 < len(kv); i += 2 {
			match = match && label(m, kv[i]) == kv[i+1]
		}
		if match {
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return math.NaN()
}

func TestWriteTextfileAccumulates(t *testing.T) {
	dir := t.TempDir()
	runs := []struct {
		run                           JobRun
		success, failure, skipped     float64
		exit, duration, lastSuccessAt float64
	}{
		{JobRun{Result: ResultSuccess, Duration: 2 * time.Second, Finished: t0}, 1, 0, 0, 0, 2, float64(t0.Unix())},
		{JobRun{Result: ResultFailure, ExitCode: 3, Duration: 5 * time.Second, Finished: t1}, 1, 1, 0, 3, 5, float64(t0.Unix())},
		{JobRun{Result: ResultSkipped, ExitCode: 75, Finished: t1.Add(time.Minute)}, 1, 1, 1, 3, 5, float64(t0.Unix())},
		{JobRun{Result: "bogus", ExitCode: 9, Duration: time.Second, Finished: t1.Add(2 * time.Minute)}, 1, 2, 1, 9, 1, float64(t0.Unix())},
	}
	for i, r := range runs {
		if err := WriteTextfile(dir, "backup", r.run); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		mfs := readProm(t, dir, "backup")
		got := []float64{
			value(mfs, "guard_job_runs_total", "name", "backup", "result", "success"),
			value(mfs, "guard_job_runs_total", "name", "backup", "result", "failure"),
			value(mfs, "guard_job_runs_total", "name", "backup", "result", "skipped"),
			value(mfs, "guard_job_last_exit_code", "name", "backup"),
			value(mfs, "guard_job_duration_seconds", "name", "backup"),
			value(mfs, "guard_job_last_success_timestamp_seconds", "name", "backup"),
		}
		want := []float64{r.success, r.failure, r.skipped, r.exit, r.duration, r.lastSuccessAt}
		for j := range want {
			if got[j] != want[j] {
				t.Errorf("run %d (%s): got %v, want %v (runs success,failure,skipped; exit; duration; last success)", i, r.run.Result, got, want)
				break
			}
		}
		if n := len(mfs["guard_job_runs_total"].GetMetric()); n != len(results) {
			t.Errorf("run %d: %d runs series, want %d", i, n, len(results))
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "backup.prom" {
		t.Errorf("dir holds %v, want only backup.prom (no temp files left)", entries)
	}
}

func TestWriteTextfileFirstRunSkipped(t *testing.T) {
	dir := t.TempDir()
	if err := WriteTextfile(dir, "j", JobRun{Result: ResultSkipped}); err != nil {
		t.Fatal(err)
	}
	mfs := readProm(t, dir, "j")
	if _, ok := mfs["guard_job_last_exit_code"]; ok {
		t.Error("a skipped first run wrote guard_job_last_exit_code; want it absent until a run runs")
	}
	if v := value(mfs, "guard_job_last_success_timestamp_seconds", "name", "j"); v != 0 {
		t.Errorf("last success = %v, want 0 (never)", v)
	}
	if v := value(mfs, "guard_job_runs_total", "result", "skipped"); v != 1 {
		t.Errorf("skipped = %v, want 1", v)
	}
}

func TestWriteTextfileBadPrevious(t *testing.T) {
	good := "# TYPE guard_job_runs_total counter\nguard_job_runs_total{name=\"j\",result=\"success\"} 41\n"
	tests := []struct {
		name    string
		prev    string
		symlink bool
		want    float64 // success count after one more success
	}{
		{name: "good", prev: good, want: 42},
		{name: "garbage", prev: "this is { not metrics\n\x00\xff", want: 1},
		{name: "empty", prev: "", want: 1},
		{name: "negative", prev: "guard_job_runs_total{name=\"j\",result=\"success\"} -5\n", want: 1},
		{name: "fraction", prev: "guard_job_runs_total{name=\"j\",result=\"success\"} 1.5\n", want: 1},
		{name: "NaN", prev: "guard_job_runs_total{name=\"j\",result=\"success\"} NaN\n", want: 1},
		{name: "wrong type", prev: "# TYPE guard_job_runs_total gauge\nguard_job_runs_total{name=\"j\",result=\"success\"} 4\n", want: 1},
		{name: "unknown result", prev: "guard_job_runs_total{name=\"j\",result=\"weird\"} 4\n", want: 1},
		{name: "other name ignored", prev: "guard_job_runs_total{name=\"k\",result=\"success\"} 4\n", want: 1},
		{name: "symlink not followed", prev: good, symlink: true, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "j.prom")
			if tt.symlink {
				target = filepath.Join(t.TempDir(), "elsewhere")
				if err := os.Symlink(target, filepath.Join(dir, "j.prom")); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(target, []byte(tt.prev), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := WriteTextfile(dir, "j", JobRun{Result: ResultSuccess, Finished: t0}); err != nil {
				t.Fatalf("WriteTextfile: %v", err)
			}
			if v := value(readProm(t, dir, "j"), "guard_job_runs_total", "result", "success"); v != tt.want {
				t.Errorf("success = %v, want %v", v, tt.want)
			}
			if tt.symlink {
				if fi, err := os.Lstat(filepath.Join(dir, "j.prom")); err != nil || !fi.Mode().IsRegular() {
					t.Errorf("j.prom is not a regular file after the write: %v %v", fi, err)
				}
				if b, _ := os.ReadFile(target); string(b) != tt.prev {
					t.Errorf("symlink target was modified: %q", b)
				}
			}
		})
	}
}

func TestWriteTextfileErrors(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"", ".", "..", "a/b", "a\x00b", "\xff", strings.Repeat("n", 201)} {
		if err := WriteTextfile(dir, name, JobRun{}); err == nil {
			t.Errorf("WriteTextfile(name %q) = nil, want an error", name)
		}
	}
	if err := WriteTextfile(filepath.Join(dir, "missing"), "j", JobRun{}); err == nil {
		t.Error("WriteTextfile into a missing directory = nil, want an error")
	}
	if err := os.Mkdir(filepath.Join(dir, "d.prom"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteTextfile(dir, "d", JobRun{}); err == nil {
		t.Error("WriteTextfile over a directory = nil, want an error")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %v after failures, want only d.prom (temp file removed)", entries)
	}
}

func TestWriteTextfileEscapesName(t *testing.T) {
	dir := t.TempDir()
	name := "nightly \"db\" backup\\ünï"
	if err := WriteTextfile(dir, name, JobRun{Result: ResultSuccess}); err != nil {
		t.Fatal(err)
	}
	if v := value(readProm(t, dir, name), "guard_job_runs_total", "name", name, "result", "success"); v != 1 {
		t.Errorf("success for %q = %v, want 1", name, v)
	}
}

func TestWriteTextfilePromtool(t *testing.T) {
	promtool := guardtest.RequirePeer(t, "promtool", "promtool (Debian package prometheus)")
	dir := t.TempDir()
	for _, r := range []string{ResultSuccess, ResultFailure, ResultSkipped} {
		if err := WriteTextfile(dir, "backup", JobRun{Result: r, ExitCode: 1, Duration: time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "backup.prom"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(data)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s\n%s", err, out, data)
	}
}

// The start of a run is visible at once; a skipped run (another run holds
// the lock) leaves it running; the end records last run and last failure,
// and a failure after a success keeps the last success.
func TestWriteTextfileStartedAndTimes(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Unix(1767225600, 0)
	if err := WriteTextfile(dir, "job", JobRun{Result: ResultSuccess, Finished: t0, PingFailures: 2}); err != nil {
		t.Fatal(err)
	}
	if err := WriteTextfileStarted(dir, "job", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := WriteTextfile(dir, "job", JobRun{Result: ResultSkipped}); err != nil {
		t.Fatal(err)
	}
	mfs := readProm(t, dir, "job")
	if v := value(mfs, "guard_job_running", "name", "job"); v != 1 {
		t.Errorf("running after start and a skipped run = %v, want 1", v)
	}
	if v := value(mfs, "guard_job_start_timestamp_seconds", "name", "job"); v != float64(t0.Add(time.Hour).Unix()) {
		t.Errorf("start = %v", v)
	}
	end := t0.Add(2 * time.Hour)
	if err := WriteTextfile(dir, "job", JobRun{Result: ResultTimeout, ExitCode: 143, Finished: end, PushFailures: 1}); err != nil {
		t.Fatal(err)
	}
	mfs = readProm(t, dir, "job")
	for n, want := range map[string]float64{
		"guard_job_running":                        0,
		"guard_job_start_timestamp_seconds":        float64(t0.Add(time.Hour).Unix()),
		"guard_job_last_run_timestamp_seconds":     float64(end.Unix()),
		"guard_job_last_failure_timestamp_seconds": float64(end.Unix()),
		"guard_job_last_success_timestamp_seconds": float64(t0.Unix()),
	} {
		if v := value(mfs, n, "name", "job"); v != want {
			t.Errorf("%s = %v, want %v", n, v, want)
		}
	}
	if v := value(mfs, "guard_report_failures_total", "name", "job", "target", "ping"); v != 2 {
		t.Errorf("ping failures = %v, want 2", v)
	}
	if v := value(mfs, "guard_report_failures_total", "name", "job", "target", "push"); v != 1 {
		t.Errorf("push failures = %v, want 1", v)
	}
}
