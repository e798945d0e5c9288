package tests

import (
	"encoding/json"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/guardkit/guard/internal/guardtest"
)

// status exit codes 3/0/3/1 for never-run / held / clean exit / crashed.
func TestStatusCodes(t *testing.T) {
	dir := lockDir(t)
	lock, started := filepath.Join(dir, "job.lock"), filepath.Join(dir, "started")
	if r := guard(t, "status", "--lock", lock); r.code != 3 {
		t.Fatalf("never run: %d %s", r.code, r.stdout)
	}
	p := startGuard(t, "run", "--lock", lock, "--", "sh", "-c", "touch "+started+"; exec sleep 1000")
	guardtest.Eventually(t, "job started", func() bool { return fileHas(started, "") || exists(started) })
	r := guard(t, "status", "--lock", lock, "--json")
	var st struct {
		State    string `json:"state"`
		Held     bool   `json:"held"`
		PID      int    `json:"pid"`
		Verified bool   `json:"verified"`
		Token    uint64 `json:"token"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != 0 {
		t.Fatalf("held: %d %q %v", r.code, r.stdout, err)
	}
	if !st.Held || st.PID != p.cmd.Process.Pid || !st.Verified || st.Token == 0 {
		t.Fatalf("held: %+v, want verified PID %d", st, p.cmd.Process.Pid)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t)
	if r := guard(t, "status", "--lock", lock); r.code != 3 || !strings.Contains(r.stdout, "released cleanly") {
		t.Fatalf("clean exit: %d %s", r.code, r.stdout)
	}
	p = startGuard(t, "run", "--lock", lock, "--", "sleep", "1000")
	guardtest.Eventually(t, "held", func() bool { return held(t, lock) })
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait(t)
	guardtest.Eventually(t, "the killed run's job to die", func() bool { return !held(t, lock) })
	if r := guard(t, "status", "--lock", lock); r.code != 1 || !strings.Contains(r.stdout, "stale") {
		t.Fatalf("crashed: %d %s", r.code, r.stdout)
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// stop on a job that ignores TERM: guard escalates to SIGKILL after
// --kill-after, and stop returns once the lock is free.
func TestStopEscalatesThroughGuard(t *testing.T) {
	dir := lockDir(t)
	lock, started := filepath.Join(dir, "job.lock"), filepath.Join(dir, "started")
	p := startGuard(t, "run", "--kill-after", "300ms", "--lock", lock, "--",
		"sh", "-c", `trap "" TERM; touch `+started+`; while :; do sleep 0.05; done`)
	guardtest.Eventually(t, "job started", func() bool { return exists(started) })
	r := guard(t, "stop", "--lock", lock, "--timeout", "20s")
	if r.code != 0 || !strings.Contains(r.stdout, "stopped") {
		t.Fatalf("stop: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if code := p.wait(t); code != 128+9 {
		t.Fatalf("guard exited %d, want 137 (job killed by SIGKILL): %s", code, p.stderr.String())
	}
	if held(t, lock) {
		t.Fatal("lock still held after stop")
	}
}

// stop on a holder that itself ignores TERM: stop escalates to SIGKILL.
func TestStopEscalatesToKill(t *testing.T) {
	lock := filepath.Join(lockDir(t), "job.lock")
	h := start(t, holderBin, lock)
	guardtest.Eventually(t, "holder locked", func() bool { return held(t, lock) })
	r := guard(t, "stop", "--lock", lock, "--timeout", "300ms")
	if r.code != 0 || !strings.Contains(r.stdout, "killed") {
		t.Fatalf("stop: %d %q %q", r.code, r.stdout, r.stderr)
	}
	h.wait(t)
	if signalOf(h) != syscall.SIGKILL {
		t.Fatalf("holder ended by %v, want SIGKILL", signalOf(h))
	}
	if r := guard(t, "status", "--lock", lock); r.code != 1 {
		t.Fatalf("status after kill: %d %s (want 1: stale record)", r.code, r.stdout)
	}
}

// reload reaches the job as SIGHUP.
func TestReloadReachesJob(t *testing.T) {
	dir := lockDir(t)
	lock, got, ready := filepath.Join(dir, "job.lock"), filepath.Join(dir, "hup"), filepath.Join(dir, "ready")
	startGuard(t, "run", "--lock", lock, "--", "sh", "-c",
		`trap "echo hup >> `+got+`" HUP; touch `+ready+`; while :; do sleep 0.05; done`)
	guardtest.Eventually(t, "job ready", func() bool { return exists(ready) })
	for i := 0; i < 2; i++ {
		if r := guard(t, "reload", "--lock", lock); r.code != 0 {
			t.Fatalf("reload: %d %s %s", r.code, r.stdout, r.stderr)
		}
		n := i + 1
		guardtest.Eventually(t, "job got SIGHUP", func() bool {
			b, _ := os.ReadFile(got)
			return strings.Count(string(b), "hup") == n
		})
	}
	if r := guard(t, "reload", "--lock", filepath.Join(dir, "other.lock")); r.code != 7 {
		t.Fatalf("reload with no holder: %d, want 7", r.code)
	}
}

// --timeout stops a job that runs too long: TERM to its group, exit 143.
func TestRunTimeout(t *testing.T) {
	lock := filepath.Join(lockDir(t), "job.lock")
	r := guard(t, "run", "--timeout", "200ms", "--lock", lock, "--", "sh", "-c", "sleep 1000 & sleep 1000; wait")
	if r.code != 128+15 || !strings.Contains(r.stderr, "--timeout") {
		t.Fatalf("timeout: %d %q", r.code, r.stderr)
	}
	if held(t, lock) {
		t.Fatal("lock held after the timed-out run")
	}
}

// The job sees GUARD_LOCK, GUARD_NAME, GUARD_TOKEN; its exit code and death
// by signal come back as guard's.
func TestRunEnvironmentAndExitCodes(t *testing.T) {
	dir := lockDir(t)
	lock := filepath.Join(dir, "nightly.lock")
	r := guard(t, "run", "--lock", lock, "--", "sh", "-c", `echo "$GUARD_LOCK|$GUARD_NAME|$GUARD_TOKEN"; exit 3`)
	f := strings.Split(strings.TrimSpace(r.stdout), "|")
	if r.code != 3 || len(f) != 3 || f[0] != lock || f[1] != "nightly" || f[2] == "" {
		t.Fatalf("run: %d %q", r.code, r.stdout)
	}
	if r := guard(t, "run", "--lock", lock, "--", "sh", "-c", "kill -USR1 $$"); r.code != 128+10 {
		t.Fatalf("job killed by USR1: exit %d", r.code)
	}
	if r := guard(t, "run", "--lock", lock, "--", filepath.Join(dir, "missing")); r.code != 127 {
		t.Fatalf("missing program: exit %d %s", r.code, r.stderr)
	}
	t.Setenv("GUARD_DIR", dir)
	if r := guard(t, "run", "--name", "viaName", "--", "sh", "-c", `echo "$GUARD_LOCK"`); r.code != 0 || strings.TrimSpace(r.stdout) != filepath.Join(dir, "viaName.lock") {
		t.Fatalf("--name: %d %q", r.code, r.stdout)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{}, {"frobnicate"}, {"run", "--lock", "x"}, {"run", "--wait", "soon", "--lock", "x", "--", "true"},
		{"run", "--name", "../etc/passwd", "--", "true"}, {"status"}, {"status", "--pidfile", "p", "--lock", "l"},
		{"run", "--conflict-exit", "300", "--lock", "x", "--", "true"},
	} {
		if r := guard(t, args...); r.code != 64 {
			t.Errorf("guard %q: exit %d, want 64 (%s)", args, r.code, r.stderr)
		} else if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); len(args) > 1 && n != 0 {
			t.Errorf("guard %q: %d lines of error, want one: %q", args, n+1, r.stderr)
		}
	}
}

// status and stop on the classic PID file of a daemon guard did not start:
// here one started by the real start-stop-daemon.
func TestPidfileOfForeignDaemon(t *testing.T) {
	ssd := guardtest.RequirePeer(t, "start-stop-daemon", "dpkg")
	sleepBin, err := osexec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	sleepBin, _ = filepath.EvalSymlinks(sleepBin)
	dir := lockDir(t)
	pf := filepath.Join(dir, "sleeper.pid")
	if r := run(t, ssd, "--start", "--background", "--make-pidfile", "--pidfile", pf, "--exec", sleepBin, "--", "1000"); r.code != 0 {
		t.Fatalf("start-stop-daemon: %d %s", r.code, r.stderr)
	}
	guardtest.Eventually(t, "PID file", func() bool { return fileHas(pf, "\n") })
	pid, _ := strconv.Atoi(strings.TrimSpace(readFile(pf)))
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	// start-stop-daemon writes the PID file in its child before that
	// child execs the daemon: wait until the PID runs sleep.
	guardtest.Eventually(t, "the daemon to exec sleep", func() bool {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		return exe == sleepBin
	})
	if r := guard(t, "status", "--pidfile", pf); r.code != 0 || !strings.Contains(r.stdout, fmt.Sprint(pid)) {
		t.Fatalf("status: %d %q, want 0 naming PID %d", r.code, r.stdout, pid)
	}
	// Tied to the wrong program: refused, the daemon lives on.
	if r := guard(t, "stop", "--pidfile", pf, "--exec", guardBin); strings.Contains(r.stdout, "stopped") || !alive(pid) {
		t.Fatalf("stop --exec with the wrong program: %d %q", r.code, r.stdout)
	}
	if r := guard(t, "stop", "--pidfile", pf, "--exec", sleepBin); r.code != 0 || !strings.Contains(r.stdout, "stopped") {
		t.Fatalf("stop: %d %q %q", r.code, r.stdout, r.stderr)
	}
	guardtest.Eventually(t, "the daemon gone", func() bool { return !alive(pid) })
	// start-stop-daemon leaves the PID file behind: stale.
	if r := guard(t, "status", "--pidfile", pf); r.code != 1 {
		t.Fatalf("status after stop: %d %q, want 1 (stale PID file)", r.code, r.stdout)
	}
	os.Remove(pf)
	if r := guard(t, "status", "--pidfile", pf); r.code != 3 {
		t.Fatalf("status without a PID file: %d, want 3", r.code)
	}
}

// A busy lock: --conflict-exit picks the exit code, --quiet drops the
// message, and a --wait that times out is a conflict too.
func TestConflictExitQuietAndWaitTimeout(t *testing.T) {
	lock := filepath.Join(lockDir(t), "job.lock")
	startGuard(t, "run", "--lock", lock, "--", "sleep", "1000")
	guardtest.Eventually(t, "held", func() bool { return held(t, lock) })
	if r := guard(t, "run", "--conflict-exit", "0", "--quiet", "--lock", lock, "--", "true"); r.code != 0 || r.stderr != "" || r.stdout != "" {
		t.Errorf("--conflict-exit 0 --quiet: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := guard(t, "run", "--conflict-exit", "3", "--lock", lock, "--", "true"); r.code != 3 || !strings.Contains(r.stderr, "busy") {
		t.Errorf("--conflict-exit 3: %d %q", r.code, r.stderr)
	}
	r := guard(t, "run", "--wait", "200ms", "--lock", lock, "--", "true")
	if r.code != 75 || !strings.Contains(r.stderr, "gave up waiting") {
		t.Errorf("--wait 200ms on a held lock: %d %q", r.code, r.stderr)
	}
}
