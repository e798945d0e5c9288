package tests

// Tests written against mutants of guard run, stop and --pid-namespace that
// the other tests let live (the second mutation pass): each drives the real
// binary the way a user does and pins a promise of the contract or the
// README that a small slip breaks.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guardkit/guard/instance"
	"github.com/guardkit/guard/internal/guardtest"
	iproc "github.com/guardkit/guard/internal/proc"
)

// Promise 1: guard stop never signals a process it cannot prove is the
// holder. Here the record names a live process with its true start time,
// boot and namespace, but another process (flock(1)) holds the lock: the
// named one is not the holder, and must not get a signal.
func TestStopSparesARecordedProcessThatDoesNotHoldTheLock(t *testing.T) {
	flock := guardtest.RequirePeer(t, "flock", "util-linux")
	lock := filepath.Join(lockDir(t), "job.lock")
	victim := exec.Command("sleep", "1000")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { victim.Process.Kill(); victim.Wait() })
	st, err := iproc.ReadStat(victim.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	boot, err := iproc.BootID()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := iproc.PIDNamespace(0)
	if err != nil {
		t.Fatal(err)
	}
	rec := instance.Record{PID: victim.Process.Pid, StartTicks: st.StartTicks, BootID: boot, PIDNS: ns,
		Host: "h", Acquired: time.Now(), Name: "job", Token: 9}
	if err := os.WriteFile(lock, rec.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, flock, "-n", lock, "sleep", "1000")
	guardtest.Eventually(t, "flock(1) holding the lock", func() bool {
		h, err := instance.Inspect(lock)
		return err == nil && h.State == instance.Held
	})
	if h, err := instance.Inspect(lock); err != nil || h.Verified {
		t.Fatalf("Inspect = %+v, %v; want held and not verified (the test's premise)", h, err)
	}
	r := guard(t, "stop", "--lock", lock, "--timeout", "1s", "--kill-wait", "1s")
	if r.code == 0 {
		t.Errorf("guard stop exit 0, want non-zero: %s%s", r.stdout, r.stderr)
	}
	if !alive(victim.Process.Pid) {
		t.Fatalf("guard stop signalled PID %d, which the record names but which does not hold the lock:\n%s%s",
			victim.Process.Pid, r.stdout, r.stderr)
	}
}

// Promise 6 across --retries: a lock lost during --retry-delay (its file
// deleted) ends the run; the next attempt never runs without the lock.
func TestRetryNotAfterTheLockWasLostInTheDelay(t *testing.T) {
	dir := t.TempDir()
	lock := filepath.Join(lockDir(t), "job.lock")
	count := filepath.Join(dir, "attempts")
	p := start(t, guardBin, "run", "--lock", lock, "--retries", "1", "--retry-delay", "6s", "--",
		"sh", "-c", `echo x >> "$1"; exit 1`, "job", count)
	guardtest.Eventually(t, "the retry delay", func() bool { return strings.Contains(p.stderr.String(), "trying again") })
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 1 {
		t.Errorf("exit %d, want the failed attempt's 1:\n%s", code, p.stderr)
	}
	b, err := os.ReadFile(count)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "x"); n != 1 {
		t.Fatalf("%d attempts ran; want 1: the lock was lost before the second:\n%s", n, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "not trying again") {
		t.Errorf("guard did not say why it stopped trying:\n%s", p.stderr)
	}
}

// README: --retries runs again "not after ... a job that could not start".
func TestRetriesNotForAJobThatCannotStart(t *testing.T) {
	lock := filepath.Join(lockDir(t), "job.lock")
	missing := filepath.Join(t.TempDir(), "no-such-program")
	r := guard(t, "run", "--lock", lock, "--retries", "2", "--", missing)
	if r.code != 127 {
		t.Errorf("exit %d, want 127: %s", r.code, r.stderr)
	}
	if n := strings.Count(r.stderr, "cannot start"); n != 1 || strings.Contains(r.stderr, "trying again") {
		t.Fatalf("%d start failures reported, want 1 and no retry:\n%s", n, r.stderr)
	}
}

// README: "The run is reported once (one ping pair ...)": --retries sends
// one start ping and one end ping for the whole run.
func TestRetriesPingOnce(t *testing.T) {
	rec := newRecorder(t, false)
	lock := filepath.Join(lockDir(t), "job.lock")
	r := guard(t, "run", "--lock", lock, "--ping", rec.url+"/ping/check", "--retries", "2", "--", "false")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1: %s", r.code, r.stderr)
	}
	var starts, ends int
	for _, q := range rec.got() {
		switch q.path {
		case "/ping/check/start":
			starts++
		case "/ping/check/1":
			ends++
		}
	}
	if starts != 1 || ends != 1 {
		t.Fatalf("%d start pings and %d end pings for three attempts, want one of each: %+v", starts, ends, rec.got())
	}
}

// --pid-namespace: guard learns that the job started as soon as it did
// (READY=1 under systemd) while the job runs, not when it ends: the
// namespace's init must not leak the pipe that reports the start into the
// job.
func TestPIDNamespaceReadyWhileTheJobRuns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("--pid-namespace needs root")
	}
	s := newSDSocket(t)
	lock := filepath.Join(lockDir(t), "job.lock")
	p := startEnv(t, sdEnv(s), guardBin, "run", "--pid-namespace", "--lock", lock, "--", "sleep", "1000")
	s.expectInOrder(t, `^READY=1\nSTATUS=running job PID`)
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t)
}

// With --notify job, once a job pinged the watchdog guard stops its own
// pings; after that attempt failed, guard pings again through
// --retry-delay (nothing else does), or systemd kills a healthy retry.
func TestRetriesWatchdogInTheDelayAfterTheJobPinged(t *testing.T) {
	s := newSDSocket(t)
	lock := filepath.Join(lockDir(t), "job.lock")
	argv, _ := sdJob(t, "send:WATCHDOG=1", "exit:1")
	env := append(sdEnv(s), "WATCHDOG_USEC=300000")
	p := startEnv(t, env, guardBin, append([]string{"run", "--notify", "job", "--lock", lock,
		"--retries", "1", "--retry-delay", "2s", "--"}, argv...)...)
	if code := p.wait(t); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, p.stderr)
	}
	got := s.settle(t)
	from := index(got, 0, regexp.MustCompile(`^STATUS=attempt 1 of 2 failed`))
	to := index(got, from+1, regexp.MustCompile(`^STATUS=running job PID`))
	if from < 0 || to < 0 {
		t.Fatalf("no retry in the datagrams: %q", got)
	}
	pings := 0
	for _, d := range got[from+1 : to] {
		if d == "WATCHDOG=1" {
			pings++
		}
	}
	// About 13 at one per 150ms over 2s; the first attempt's own ping may
	// arrive late, so more than one is needed.
	if pings < 4 {
		t.Fatalf("%d WATCHDOG=1 during the 2s --retry-delay (WATCHDOG_USEC=300000): %q", pings, got[from:to])
	}
}

// A job stopped because guard lost its lock (the lock file replaced, the new
// one held by another process) is a killed run, even when the job answers
// SIGTERM with exit 0: guard exits 69 and the textfile counts it as killed,
// never as a success.
func TestLostLockRunIsNotASuccess(t *testing.T) {
	flock := guardtest.RequirePeer(t, "flock", "util-linux")
	dir, tf := t.TempDir(), t.TempDir()
	ldir := lockDir(t)
	lock := filepath.Join(ldir, "job.lock")
	ready := filepath.Join(dir, "ready")
	p := start(t, guardBin, "run", "--lock", lock, "--name", "lostjob", "--textfile-dir", tf, "--",
		"sh", "-c", `trap 'exit 0' TERM; touch "$1"; while :; do sleep 0.1; done`, "job", ready)
	guardtest.Eventually(t, "the job", func() bool { _, err := os.Stat(ready); return err == nil })
	other := filepath.Join(ldir, "other.lock")
	start(t, flock, "-n", other, "sleep", "1000")
	guardtest.Eventually(t, "flock(1) holding the other file", func() bool {
		h, err := instance.Inspect(other)
		return err == nil && h.State == instance.Held
	})
	if err := os.Rename(other, lock); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 69 {
		t.Fatalf("exit %d, want 69 (lock lost):\n%s", code, p.stderr)
	}
	b, err := os.ReadFile(filepath.Join(tf, "lostjob.prom"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `guard_job_runs_total{name="lostjob",result="killed"} 1`) ||
		strings.Contains(string(b), `result="success"} 1`) {
		t.Fatalf("textfile after a run stopped for a lost lock:\n%s", b)
	}
}

// LSB: guard status exits 4 (unknown) when it cannot read the lock file (a
// 0600 lock file of another user), not 77: it cannot tell, and says so.
func TestStatusUnknownWhenTheLockFileIsUnreadable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run status as another user")
	}
	dir, err := os.MkdirTemp("", "guard-status-") // 0700 parents of t.TempDir() would stop the other user
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "guard")
	b, err := os.ReadFile(guardBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(dir, "job.lock")
	p := start(t, guardBin, "run", "--lock", lock, "--", "sleep", "1000")
	guardtest.Eventually(t, "the lock held", func() bool {
		h, err := instance.Inspect(lock)
		return err == nil && h.State == instance.Held
	})
	cmd := exec.Command(bin, "status", "--lock", lock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	if code := cmd.ProcessState.ExitCode(); code != 4 {
		t.Fatalf("status as another user exit %d, want 4 (unknown): %s", code, out)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t)
}
