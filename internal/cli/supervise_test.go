package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/guardkit/guard/health"
	"github.com/guardkit/guard/instance"

	"github.com/guardkit/guard/internal/guardtest"
)

// renewedLease is a lease a server could take away, driven by the test
// (package etcd's tests drive the real one against a real etcd).
type renewedLease struct {
	jeopardy, ending, lost chan struct{}
}

func newRenewedLease() *renewedLease {
	return &renewedLease{make(chan struct{}), make(chan struct{}), make(chan struct{})}
}

func (l *renewedLease) Token() uint64             { return 7 }
func (l *renewedLease) Record() instance.Record   { return instance.Record{Token: 7} }
func (l *renewedLease) Since() time.Time          { return time.Now() }
func (l *renewedLease) Lost() <-chan struct{}     { return l.lost }
func (l *renewedLease) Err() error                { return instance.ErrLeaseExpired }
func (l *renewedLease) Release() error            { return nil }
func (l *renewedLease) Jeopardy() <-chan struct{} { return l.jeopardy }
func (l *renewedLease) Ending() <-chan struct{}   { return l.ending }

// startRenewed runs script under le as guard run does; the run's exit code
// arrives on the returned channel once the whole tree is gone.
func startRenewed(t *testing.T, le *renewedLease, script string) (*observer, <-chan int) {
	t.Helper()
	obs, err := New(Config{}).newObserver("", "", filepath.Join(t.TempDir(), "x.lock"), "x")
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{opts: &runOpts{killAfter: time.Minute, lockFlags: lockFlags{c: obs.c}}, lease: le, path: "/guard/x", name: "x",
		sigs: make(chan os.Signal), obs: obs}
	code := make(chan int, 1)
	go func() { code <- codeOf(r.run([]string{"/bin/sh", "-c", script})) }()
	guardtest.Eventually(t, "the job to start", obs.state.Ready)
	return obs, code
}

func exitOf(t *testing.T, code <-chan int) int {
	t.Helper()
	select {
	case c := <-code:
		return c
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not end")
		return -1
	}
}

// Jeopardy makes the run not ready while the job runs on; Ending stops the
// whole tree with SIGTERM; the run exits 69.
func TestRenewedLeaseEndingStopsTree(t *testing.T) {
	le := newRenewedLease()
	mark := filepath.Join(t.TempDir(), "termed")
	obs, code := startRenewed(t, le, `trap 'touch `+mark+`; exit 0' TERM; while :; do sleep 0.05; done`)
	close(le.jeopardy)
	guardtest.Eventually(t, "not ready after jeopardy", func() bool { return !obs.state.Ready() })
	close(le.ending)
	if c := exitOf(t, code); c != exitLost {
		t.Fatalf("exit %d, want %d", c, exitLost)
	}
	if _, err := os.Stat(mark); err != nil {
		t.Fatal("the job did not get SIGTERM when the lease was ending")
	}
}

// Lost kills the whole tree at once (SIGKILL), even a job that ignores
// SIGTERM, and does not try to take the lease again.
func TestRenewedLeaseLostKillsTree(t *testing.T) {
	le := newRenewedLease()
	obs, code := startRenewed(t, le, `trap '' TERM; sleep 300 & while :; do sleep 0.05; done`)
	close(le.lost)
	if c := exitOf(t, code); c != exitLost {
		t.Fatalf("exit %d, want %d", c, exitLost)
	}
	// Counted by reason and signal, with the slack measured.
	want := `
# HELP guard_lease_lost_total Holds whose lease was lost, by reason (deadline, expired, revoked, other).
# TYPE guard_lease_lost_total counter
guard_lease_lost_total{reason="deadline"} 0
guard_lease_lost_total{reason="expired"} 1
guard_lease_lost_total{reason="other"} 0
guard_lease_lost_total{reason="revoked"} 0
# HELP guard_lease_tree_signals_total Signals sent to the job's whole tree because the lease was ending (TERM) or lost (KILL).
# TYPE guard_lease_tree_signals_total counter
guard_lease_tree_signals_total{signal="KILL"} 1
guard_lease_tree_signals_total{signal="TERM"} 0
`
	obs.state.LeaseRenewal(true, time.Millisecond, time.Second, time.Now()) // the lease metrics show once renewed
	reg := health.NewRegistry(obs.state, health.BuildInfo{})
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "guard_lease_lost_total", "guard_lease_tree_signals_total"); err != nil {
		t.Fatal(err)
	}
	if n, _ := testutil.GatherAndCount(reg, "guard_lease_kill_slack_seconds"); n != 1 {
		t.Fatal("no guard_lease_kill_slack_seconds after the lease killed the tree")
	}
}
