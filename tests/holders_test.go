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

// statusHolders is the part of status --json about the processes holding
// the lock.
type statusHolders struct {
	State    string `json:"state"`
	Orphaned bool   `json:"orphaned"`
	Holders  []struct {
		PID  int    `json:"pid"`
		Comm string `json:"comm"`
	} `json:"holders"`
}

func (s statusHolders) has(pid int) bool {
	for _, h := range s.Holders {
		if h.PID == pid {
			return true
		}
	}
	return false
}

// orphansOfKilledGuard is Promise 6's last sentence: guard is SIGKILLed, a
// setsid'ed grandchild of its job keeps the lock (it holds the locked
// descriptor), status shows it, stop stops it, and the bystander lives on.
func orphansOfKilledGuard(t *testing.T) {
	dir := lockDir(t)
	lock, pidf := filepath.Join(dir, "job.lock"), filepath.Join(dir, "orphan")
	bystander := sleeper(t)
	g := startGuard(t, "run", "--lock", lock, "--", "sh", "-c", "setsid sleep 300 & echo $$ $! > "+pidf+"; sleep 300")
	guardtest.Eventually(t, "the job's grandchild", func() bool { return fileHas(pidf, "\n") })
	orphan := jobOrphan(t, pidf)
	g.cmd.Process.Signal(syscall.SIGKILL)
	g.wait(t)
	if !alive(orphan) {
		t.Fatal("the orphan died with guard; nothing to test")
	}
	if os.Getenv("GUARD_HOLDERS_IN_PIDNS") == "1" {
		t.Logf("/proc/locks hides the orphan's lock: %v", hiddenFromProcLocks(t, lock))
	}
	r := guard(t, "status", "--lock", lock)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprint(orphan)) || !strings.Contains(r.stdout, "dead") ||
		strings.Count(strings.TrimSpace(r.stdout), "\n") != 0 {
		t.Fatalf("status: %d %q, want 0 on one line naming the orphan PID %d and the dead recorded holder", r.code, r.stdout, orphan)
	}
	r = guard(t, "status", "--lock", lock, "--json")
	var st statusHolders
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != 0 || !st.Orphaned || !st.has(orphan) {
		t.Fatalf("status --json: %d %v %s, want orphaned holders naming PID %d", r.code, err, r.stdout, orphan)
	}
	if r := guard(t, "stop", "--lock", lock, "--timeout", "5s"); r.code != 0 {
		t.Fatalf("stop: %d %q %q, want 0", r.code, r.stdout, r.stderr)
	}
	if alive(orphan) {
		t.Fatalf("the orphan PID %d survived stop", orphan)
	}
	if r := guard(t, "run", "--lock", lock, "--", "true"); r.code != 0 {
		t.Fatalf("run after stop: %d %q, want 0: the lock is free", r.code, r.stderr)
	}
	if !alive(bystander.cmd.Process.Pid) {
		t.Fatal("the bystander was hurt")
	}
}

// jobOrphan reads "JOBPID ORPHANPID" from pidf and returns the orphan's
// PID. The cleanup kills the job's process group (guard made the job a
// group leader, so the cleanup of guard's group misses it) and the orphan
// (its own session).
func jobOrphan(t *testing.T, pidf string) int {
	t.Helper()
	f := strings.Fields(readFile(pidf))
	if len(f) != 2 {
		t.Fatalf("%s: %q, want the job's and the orphan's PIDs", pidf, f)
	}
	job, err1 := strconv.Atoi(f[0])
	orphan, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || job <= 1 || orphan <= 1 {
		t.Fatalf("%s: %q", pidf, f)
	}
	t.Cleanup(func() {
		syscall.Kill(-job, syscall.SIGKILL)
		syscall.Kill(orphan, syscall.SIGKILL)
	})
	return orphan
}

func TestOrphansOfKilledGuard(t *testing.T) { orphansOfKilledGuard(t) }

// The same in a child PID namespace (a container), where /proc/locks hides
// a lock whose taker died: status must not say "not running", nor stop
// "stopped", while the orphan holds the lock. The test binary re-runs
// itself as the namespace's PID 1.
func TestOrphansOfKilledGuardInPIDNamespace(t *testing.T) {
	if os.Getenv("GUARD_HOLDERS_IN_PIDNS") == "1" {
		orphansOfKilledGuard(t)
		return
	}
	unshare := guardtest.RequirePeer(t, "unshare", "util-linux")
	if os.Geteuid() != 0 {
		t.Skip("unshare --pid needs root")
	}
	cmd := osexec.Command(unshare, "--pid", "--fork", "--mount-proc", "--kill-child",
		os.Args[0], "-test.run=^TestOrphansOfKilledGuardInPIDNamespace$", "-test.v")
	cmd.Env = append(os.Environ(), "GUARD_HOLDERS_IN_PIDNS=1", "GUARD_TEST_BIN="+guardBin, "GUARD_TEST_HOLDER="+holderBin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in a private PID namespace: %v\n%s", err, out)
	}
	t.Logf("in a private PID namespace:\n%s", out)
}

// hiddenFromProcLocks reports whether /proc/locks lists no lock on the file.
func hiddenFromProcLocks(t *testing.T, path string) bool {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return !strings.Contains(readFile("/proc/locks"), fmt.Sprintf(":%d ", st.Ino))
}

// A lock held from outside this PID namespace, where neither /proc/locks nor
// /proc/PID/fd shows it: status says unknown (4), never "not running", and
// stop signals nothing and says 4.
func TestHolderOutsideThisPIDNamespace(t *testing.T) {
	if os.Getenv("GUARD_HOLDERS_IN_PIDNS") == "1" {
		lock := os.Getenv("GUARD_HOLDERS_LOCK")
		if !hiddenFromProcLocks(t, lock) {
			t.Log("this kernel lists the outside holder's lock in /proc/locks")
		}
		if r := guard(t, "status", "--lock", lock); r.code != 4 {
			t.Errorf("status inside: %d %q, want 4 (cannot see who holds it)", r.code, r.stdout)
		}
		if r := guard(t, "stop", "--lock", lock, "--timeout", "200ms"); r.code != 4 {
			t.Errorf("stop inside: %d %q %q, want 4", r.code, r.stdout, r.stderr)
		}
		return
	}
	unshare := guardtest.RequirePeer(t, "unshare", "util-linux")
	guardtest.RequirePeer(t, "flock", "util-linux")
	if os.Geteuid() != 0 {
		t.Skip("unshare --pid needs root")
	}
	lock := filepath.Join(lockDir(t), "job.lock")
	f := start(t, "flock", lock, "sleep", "1000")
	guardtest.Eventually(t, "flock(1) holds the lock", func() bool { return held(t, lock) })
	cmd := osexec.Command(unshare, "--pid", "--fork", "--mount-proc", "--kill-child",
		os.Args[0], "-test.run=^TestHolderOutsideThisPIDNamespace$", "-test.v")
	cmd.Env = append(os.Environ(), "GUARD_HOLDERS_IN_PIDNS=1", "GUARD_HOLDERS_LOCK="+lock,
		"GUARD_TEST_BIN="+guardBin, "GUARD_TEST_HOLDER="+holderBin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in a private PID namespace: %v\n%s", err, out)
	}
	if f.exited() {
		t.Fatal("the holder outside was signalled")
	}
}

// A lock held by a foreign program (flock(1), no guard record): status says
// it is held and by whom; stop refuses (exit 1), because nothing ties the
// holders to a guard record: holding the lock proves them holders, not a
// job guard ran (and Promise 1 signals only a proven guard holder or its
// job's orphans).
func TestForeignFlockHolder(t *testing.T) {
	guardtest.RequirePeer(t, "flock", "util-linux")
	lock := filepath.Join(lockDir(t), "job.lock")
	f := start(t, "flock", lock, "sleep", "1000")
	pid := f.cmd.Process.Pid
	guardtest.Eventually(t, "flock(1) holds the lock", func() bool { return held(t, lock) })
	r := guard(t, "status", "--lock", lock)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("held by PID %d (flock)", pid)) || !strings.Contains(r.stdout, "not a guard record") {
		t.Fatalf("status: %d %q, want 0, held by PID %d (flock), not a guard record", r.code, r.stdout, pid)
	}
	var st statusHolders
	r = guard(t, "status", "--lock", lock, "--json")
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || !st.has(pid) || st.Orphaned || len(st.Holders) != 2 {
		t.Fatalf("status --json: %v %s, want flock(1) and its sleep as holders", err, r.stdout)
	}
	if r := guard(t, "stop", "--lock", lock, "--timeout", "200ms"); r.code != 1 || !strings.Contains(r.stderr, fmt.Sprint(pid)) {
		t.Fatalf("stop: %d %q %q, want 1 naming PID %d", r.code, r.stdout, r.stderr, pid)
	}
	if f.exited() {
		t.Fatal("stop signalled the foreign holder")
	}
}

// The orphans outlive guard as another user sees them: their descriptors
// cannot be read, so who holds the lock cannot be seen: status and stop say
// 4, never "not running" (3) nor "stopped" (0).
func TestOrphansUnseenByAnotherUser(t *testing.T) {
	runuser := guardtest.RequirePeer(t, "runuser", "util-linux")
	if os.Geteuid() != 0 {
		t.Skip("needs root to run as nobody")
	}
	dir := lockDir(t)
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // nobody must reach the lock file
	}
	// A copy of guard that nobody may run (the built one is in a 0700
	// directory).
	bin := filepath.Join(dir, "guard")
	if b, err := os.ReadFile(guardBin); err != nil || os.WriteFile(bin, b, 0o755) != nil {
		t.Fatalf("copy guard: %v", err)
	}
	lock, pidf := filepath.Join(dir, "job.lock"), filepath.Join(dir, "orphan")
	// Readable by others (the default 0600 would stop nobody at the open).
	g := startGuard(t, "run", "--lock", lock, "--lock-mode", "0644", "--", "sh", "-c", "setsid sleep 300 & echo $$ $! > "+pidf+"; sleep 300")
	guardtest.Eventually(t, "the job's grandchild", func() bool { return fileHas(pidf, "\n") })
	orphan := jobOrphan(t, pidf)
	g.cmd.Process.Signal(syscall.SIGKILL)
	g.wait(t)
	if r := run(t, runuser, "-u", "nobody", "--", bin, "status", "--lock", lock); r.code != 4 {
		t.Fatalf("status as nobody: %d %q %q, want 4", r.code, r.stdout, r.stderr)
	}
	if r := run(t, runuser, "-u", "nobody", "--", bin, "stop", "--lock", lock, "--timeout", "200ms"); r.code != 4 {
		t.Fatalf("stop as nobody: %d %q %q, want 4", r.code, r.stdout, r.stderr)
	}
	if !alive(orphan) {
		t.Fatal("the orphan was signalled")
	}
}

// An orphan that ignores SIGTERM and keeps starting children (each holding
// the lock it inherited): stop escalates to SIGKILL after --timeout, reaches
// the children that appear meanwhile, and exits 0 once the lock is free.
func TestStopEscalatesOnOrphans(t *testing.T) {
	dir := lockDir(t)
	lock, pidf := filepath.Join(dir, "job.lock"), filepath.Join(dir, "orphan")
	g := startGuard(t, "run", "--lock", lock, "--", "sh", "-c",
		`setsid sh -c 'trap "" TERM; while :; do sleep 0.05; done' & echo $$ $! > `+pidf+`; sleep 300`)
	guardtest.Eventually(t, "the job's grandchild", func() bool { return fileHas(pidf, "\n") })
	orphan := jobOrphan(t, pidf)
	g.cmd.Process.Signal(syscall.SIGKILL)
	g.wait(t)
	r := guard(t, "stop", "--lock", lock, "--timeout", "300ms")
	if r.code != 0 || !strings.Contains(r.stdout, "killed") {
		t.Fatalf("stop: %d %q %q, want 0 after SIGKILL", r.code, r.stdout, r.stderr)
	}
	if alive(orphan) {
		t.Fatalf("the orphan PID %d survived", orphan)
	}
	if r := guard(t, "status", "--lock", lock); r.code != 1 {
		t.Fatalf("status after stop: %d %q, want 1 (stale record, nobody holds it)", r.code, r.stdout)
	}
}
