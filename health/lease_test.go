package health

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/guardkit/guard/internal/guardtest"
)

// leaseState is a held etcd lease after three renewals, one failed, and
// overdue renewal.
func leaseState() *State {
	st := new(State)
	st.SetLockPath("/guard/backup/")
	st.Acquired(42, 7, time.Unix(1700000000, 0), 0)
	deadline := time.Unix(1700000100, 0)
	st.LeaseRenewal(true, 3*time.Millisecond, 10*time.Second, deadline)
	st.LeaseRenewal(true, 40*time.Millisecond, 10*time.Second, deadline)
	st.LeaseRenewal(false, time.Second, 10*time.Second, deadline)
	st.LeaseJeopardy()
	st.LeaseSignal("TERM")
	st.LeaseSignal("KILL")
	st.LeaseLost("deadline")
	st.LeaseLost("no such reason")
	st.LeaseSlack(600 * time.Millisecond)
	st.SetLeaseServer("3.7.3", "cdf818194e3a8c32")
	return st
}

func TestLeaseMetrics(t *testing.T) {
	reg := NewRegistry(leaseState(), BuildInfo{Version: "1.0.0"})
	want := `
# HELP guard_lease_deadline_timestamp_seconds Unix time at which the job's tree is killed unless the lease is renewed before.
# TYPE guard_lease_deadline_timestamp_seconds gauge
guard_lease_deadline_timestamp_seconds 1.7000001e+09
# HELP guard_lease_kill_slack_seconds For the last job stopped because its lease ended: the lease's deadline minus the moment its whole tree was gone.
# TYPE guard_lease_kill_slack_seconds gauge
guard_lease_kill_slack_seconds 0.6
# HELP guard_lease_lost_total Holds whose lease was lost, by reason (deadline, expired, revoked, other).
# TYPE guard_lease_lost_total counter
guard_lease_lost_total{reason="deadline"} 1
guard_lease_lost_total{reason="expired"} 0
guard_lease_lost_total{reason="other"} 1
guard_lease_lost_total{reason="revoked"} 0
# HELP guard_lease_server_info The lock server's version and cluster id; always 1.
# TYPE guard_lease_server_info gauge
guard_lease_server_info{cluster_id="cdf818194e3a8c32",version="3.7.3"} 1
# HELP guard_lease_tree_signals_total Signals sent to the job's whole tree because the lease was ending (TERM) or lost (KILL).
# TYPE guard_lease_tree_signals_total counter
guard_lease_tree_signals_total{signal="KILL"} 1
guard_lease_tree_signals_total{signal="TERM"} 1
# HELP guard_lease_jeopardy 1 once renewal of the held lease was overdue (not ready), else 0.
# TYPE guard_lease_jeopardy gauge
guard_lease_jeopardy 1
# HELP guard_lease_renewals_total Renewals of the lock's lease (etcd) by result.
# TYPE guard_lease_renewals_total counter
guard_lease_renewals_total{result="failure"} 1
guard_lease_renewals_total{result="success"} 2
# HELP guard_lease_ttl_seconds TTL the server granted the held lease.
# TYPE guard_lease_ttl_seconds gauge
guard_lease_ttl_seconds 10
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "guard_lease_deadline_timestamp_seconds",
		"guard_lease_jeopardy", "guard_lease_renewals_total", "guard_lease_ttl_seconds", "guard_lease_kill_slack_seconds",
		"guard_lease_lost_total", "guard_lease_server_info", "guard_lease_tree_signals_total"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "guard_lease_renewal_rtt_seconds"); err != nil || n != 1 {
		t.Fatalf("rtt histogram: %d series, %v", n, err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	promtool := guardtest.RequirePeer(t, "promtool", "promtool (Debian package prometheus)")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(gatherText(t, reg, func(string) bool { return true }))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	// A local file lock reports no lease metrics at all.
	if n, _ := testutil.GatherAndCount(NewRegistry(goldenState(), BuildInfo{}), "guard_lease_renewals_total", "guard_lease_ttl_seconds"); n != 0 {
		t.Fatalf("a file lock has %d lease series", n)
	}
	// Released: the counters stay, the held lease's gauges go.
	st := leaseState()
	st.Released()
	if n, _ := testutil.GatherAndCount(NewRegistry(st, BuildInfo{}), "guard_lease_ttl_seconds", "guard_lease_deadline_timestamp_seconds"); n != 0 {
		t.Fatalf("released: %d held-lease series remain", n)
	}
	if n, _ := testutil.GatherAndCount(NewRegistry(st, BuildInfo{}), "guard_lease_renewals_total"); n != 2 {
		t.Fatalf("released: %d renewal series, want 2", n)
	}
}

func TestHealthzLease(t *testing.T) {
	st := leaseState()
	rec := serve(t, NewHandler(Options{Lock: st, Reloads: st}), http.MethodGet, "/healthz")
	var body struct {
		Lease *struct {
			TTL      float64 `json:"ttl_seconds"`
			Deadline string  `json:"deadline"`
			Renewals uint64  `json:"renewals"`
			Failures uint64  `json:"renewal_failures"`
			Jeopardy bool    `json:"jeopardy"`
		} `json:"lease"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Lease == nil {
		t.Fatalf("/healthz %s: no lease (%v)", rec.Body.String(), err)
	}
	if l := body.Lease; l.TTL != 10 || l.Deadline != "2023-11-14T22:15:00Z" || l.Renewals != 2 || l.Failures != 1 || !l.Jeopardy {
		t.Fatalf("lease %+v", *l)
	}
	rec = serve(t, NewHandler(Options{Lock: goldenState()}), http.MethodGet, "/healthz")
	if strings.Contains(rec.Body.String(), `"lease"`) {
		t.Fatalf("a file lock's /healthz shows a lease: %s", rec.Body.String())
	}
}
