package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guardkit/guard/internal/guardtest"
)

// The scenarios of the guard tests, run against util-linux flock(1) where
// they apply, to show where guard behaves differently (README.md).

func TestFlockFiftyConcurrent(t *testing.T) {
	guardtest.RequirePeer(t, "flock", "util-linux")
	dir := lockDir(t)
	lock, starts := filepath.Join(dir, "job.lock"), filepath.Join(dir, "starts")
	ps := make([]*proc, 50)
	for i := range ps {
		ps[i] = start(t, "flock", "-n", lock, "sh", "-c", fmt.Sprintf("echo $$ >> %s; sleep 3", starts))
	}
	codes := map[int]int{}
	for _, p := range ps {
		codes[p.wait(t)]++
	}
	b, _ := os.ReadFile(starts)
	if n := strings.Count(string(b), "\n"); n != 1 || codes[0] != 1 || codes[1] != 49 {
		t.Fatalf("flock(1): %d jobs, exit codes %v", n, codes)
	}
	t.Logf("flock(1): one job ran, 49 exited 1 without saying who holds the lock")
}

func TestGuardAndFlockExcludeEachOther(t *testing.T) {
	guardtest.RequirePeer(t, "flock", "util-linux")
	dir := lockDir(t)
	lock := filepath.Join(dir, "job.lock")
	f := start(t, "flock", lock, "sleep", "1000")
	guardtest.Eventually(t, "flock(1) holds it", func() bool { return held(t, lock) })
	r := guard(t, "run", "--lock", lock, "--", "true")
	if r.code != 75 || !strings.Contains(r.stderr, fmt.Sprint(f.cmd.Process.Pid)) {
		t.Fatalf("guard run against flock(1): %d %q, want 75 naming PID %d", r.code, r.stderr, f.cmd.Process.Pid)
	}
	f.cmd.Process.Kill()
	f.wait(t)
	g := startGuard(t, "run", "--lock", lock, "--", "sleep", "1000")
	guardtest.Eventually(t, "guard holds it", func() bool { return held(t, lock) })
	if r := run(t, "flock", "-n", lock, "true"); r.code != 1 {
		t.Fatalf("flock -n against guard: exit %d, want 1", r.code)
	}
	g.cmd.Process.Kill()
}

// Deleted lock file: with flock(1) a second run locks the new file while the
// first still runs; with guard the holder re-locks and the second is refused
// (TestLockFileDeletedOrReplaced).
func TestFlockDeletedLockFileOverlaps(t *testing.T) {
	guardtest.RequirePeer(t, "flock", "util-linux")
	dir := lockDir(t)
	lock := filepath.Join(dir, "job.lock")
	start(t, "flock", lock, "sleep", "1000")
	guardtest.Eventually(t, "flock(1) holds it", func() bool { return held(t, lock) })
	os.Remove(lock)
	r := run(t, "flock", "-n", lock, "true")
	t.Logf("flock(1) after the lock file was deleted under the holder: second run exit %d (0 = two jobs at once)", r.code)
	if r.code != 0 {
		t.Logf("note: this flock(1) refused the second run")
	}
}

// A symlink planted at the lock path: flock(1) follows it, guard refuses.
func TestSymlinkAtLockPath(t *testing.T) {
	guardtest.RequirePeer(t, "flock", "util-linux")
	dir := lockDir(t)
	victim, lock := filepath.Join(dir, "victim"), filepath.Join(dir, "job.lock")
	os.WriteFile(victim, []byte("precious\n"), 0o644)
	os.Symlink(victim, lock)
	r := guard(t, "run", "--lock", lock, "--", "true")
	if r.code != 78 || !strings.Contains(r.stderr, "symbolic link") {
		t.Fatalf("guard on a symlink: %d %q, want 78", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Fatalf("victim changed: %q", b)
	}
	if r := guard(t, "status", "--lock", lock); r.code != 78 {
		t.Fatalf("status on a symlink: %d, want 78", r.code)
	}
	fr := run(t, "flock", "-n", lock, "true")
	t.Logf("flock(1) on the same symlink: exit %d (0 = it followed the link and locked the target)", fr.code)
}

// Unsafe places for a lock: refused with 78 and a one-line reason.
func TestUnsafeLockPlaces(t *testing.T) {
	dir := lockDir(t)
	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	foreign := filepath.Join(dir, "foreign.lock")
	os.WriteFile(foreign, []byte("not a lock\n"), 0o644)
	for _, lock := range []string{filepath.Join(open, "x.lock"), foreign} {
		r := guard(t, "run", "--lock", lock, "--", "true")
		if r.code != 78 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("%s: exit %d %q, want 78 and one line", lock, r.code, r.stderr)
		}
	}
	if r := guard(t, "run", "--lock", filepath.Join(dir, "missing", "x.lock"), "--", "true"); r.code != 73 {
		t.Errorf("missing directory: exit %d, want 73 (%s)", r.code, r.stderr)
	}
}
