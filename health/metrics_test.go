package health

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/guardkit/guard/internal/guardtest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// goldenState is a State that has been through every kind of event.
func goldenState() *State {
	var st State
	st.SetLockPath("/run/guard/backup.lock")
	st.Contended()
	st.Waiting()
	st.Acquired(4242, 7, t0, 1500*time.Millisecond)
	st.Reload(true, t0.Add(time.Minute))
	st.Reload(false, t0.Add(2*time.Minute))
	st.JobStartedAt(t1.Add(-time.Minute))
	st.JobFinished(JobRun{Result: ResultFailure, ExitCode: 3, Duration: 2500 * time.Millisecond, Finished: t1})
	st.JobFinished(JobRun{Result: ResultSuccess, Duration: time.Second, Finished: t1.Add(time.Minute)})
	st.JobFinished(JobRun{Result: "no-such-result", ExitCode: 1, Duration: 4 * time.Second, Finished: t1.Add(2 * time.Minute)})
	st.JobFinished(JobRun{Result: ResultSkipped, ExitCode: 75, Finished: t1.Add(3 * time.Minute)})
	st.JobStartedAt(t1.Add(4 * time.Minute))
	st.Lost()
	st.Lost() // counted once per hold
	return &st
}

// gatherText gathers reg and returns the text format of the families
// accepted by keep.
func gatherText(t *testing.T, reg prometheus.Gatherer, keep func(string) bool) []byte {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		if keep(mf.GetName()) {
			if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
				t.Fatal(err)
			}
		}
	}
	return buf.Bytes()
}

// guardOnly keeps the guard_* families that do not depend on the toolchain.
func guardOnly(name string) bool {
	return strings.HasPrefix(name, "guard_") && name != "guard_build_info"
}

func TestMetricsGolden(t *testing.T) {
	got := gatherText(t, NewRegistry(goldenState(), BuildInfo{}), guardOnly)
	golden := filepath.Join("testdata", "metrics.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./health/ -run TestMetricsGolden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("/metrics guard_* differs from %s (run with -update if intended):\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
}

// TestMetricsLint runs the promlint rules promtool applies on every family
// of the registry, in an empty and in a busy state.
func TestMetricsLint(t *testing.T) {
	for _, st := range []*State{new(State), goldenState()} {
		problems, err := testutil.GatherAndLint(NewRegistry(st, BuildInfo{Version: "1.0.0", Revision: "abc"}))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("lint %s: %s", p.Metric, p.Text)
		}
	}
}

func TestMetricsPromtool(t *testing.T) {
	promtool := guardtest.RequirePeer(t, "promtool", "promtool (Debian package prometheus)")
	text := gatherText(t, NewRegistry(goldenState(), BuildInfo{Version: "1.0.0"}), func(string) bool { return true })
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestBuildInfo(t *testing.T) {
	tests := []struct {
		name string
		info BuildInfo
		want map[string]string
	}{
		{"set", BuildInfo{Version: "1.2.3", Revision: "deadbeef"},
			map[string]string{"version": "1.2.3", "revision": "deadbeef", "goversion": runtime.Version()}},
		{"empty", BuildInfo{},
			map[string]string{"version": "unknown", "revision": "unknown", "goversion": runtime.Version()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mf := family1(t, NewRegistry(new(State), tt.info), "guard_build_info")
			m := mf.GetMetric()
			if len(m) != 1 || m[0].GetGauge().GetValue() != 1 {
				t.Fatalf("guard_build_info = %v, want one series of value 1", m)
			}
			got := map[string]string{}
			for _, lp := range m[0].GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("label %s = %q, want %q", k, got[k], v)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("labels = %v, want only %v", got, tt.want)
			}
		})
	}
}

func family1(t *testing.T, g prometheus.Gatherer, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	t.Fatalf("no %s in %d families", name, len(mfs))
	return nil
}

// countSeries is testutil.GatherAndCount: the number of series of g.
func countSeries(t *testing.T, g prometheus.Gatherer) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		n += len(mf.GetMetric())
	}
	return n
}

// TestMetricsBoundedSeries: events change values, never the set of series
// (except the last-run gauges, which appear once with the first run).
func TestMetricsBoundedSeries(t *testing.T) {
	var st State
	reg := NewRegistry(&st, BuildInfo{})
	st.JobFinished(JobRun{Result: ResultSuccess})
	before := countSeries(t, reg)
	for i := range 100 {
		st.SetLockPath(strings.Repeat("x", i))
		st.Acquired(i+2, uint64(i), time.Now(), time.Duration(i)*time.Second)
		st.Lost()
		st.Released()
		st.Reload(i%2 == 0, time.Now())
		st.JobFinished(JobRun{Result: strings.Repeat("r", i), ExitCode: i})
	}
	if after := countSeries(t, reg); after != before {
		t.Errorf("series: %d before, %d after 100 rounds of events", before, after)
	}
}
