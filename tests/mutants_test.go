package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/guardkit/guard/internal/guardtest"
)

// Tests written against mutants of guard that the other tests let live:
// each pins a promise of the contract that a small slip breaks.

// blockedInFlock reports whether /proc/locks lists pid waiting for a flock
// (a "->" line).
func blockedInFlock(pid int) bool {
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[1] == "->" && f[2] == "FLOCK" && f[5] == strconv.Itoa(pid) {
			return true
		}
	}
	return false
}

// SIGTERM or SIGINT to a run that waits for the lock (--wait) ends the
// wait: guard exits 128+N naming the signal, and the job never runs.
func TestSignalEndsTheWaitForTheLock(t *testing.T) {
	dir := lockDir(t)
	lock, started := filepath.Join(dir, "job.lock"), filepath.Join(dir, "started")
	holder := startTree(t, "run", "--lock", lock, "--", "sh", "-c", "touch "+started+"; exec sleep 1000")
	guardtest.Eventually(t, "the holder's job", func() bool { return exists(started) || holder.exited() })
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		ran := filepath.Join(dir, "ran-"+strconv.Itoa(int(sig)))
		w := startGuard(t, "run", "--wait", "forever", "--lock", lock, "--", "touch", ran)
		guardtest.Eventually(t, "the waiter blocked on the lock", func() bool { return blockedInFlock(w.cmd.Process.Pid) || w.exited() })
		if w.exited() {
			t.Fatalf("the waiter ended before the signal: exit %d: %s", w.cmd.ProcessState.ExitCode(), w.stderr)
		}
		w.cmd.Process.Signal(sig)
		name := map[syscall.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM"}[sig]
		if code := w.wait(t); code != 128+int(sig) || !strings.Contains(w.stderr.String(), name+" while waiting") {
			t.Fatalf("%s to a waiting run: exit %d, want %d naming the signal: %s", name, code, 128+int(sig), w.stderr)
		}
		if exists(ran) {
			t.Fatalf("the job ran after %s ended its wait", name)
		}
	}
	if holder.exited() {
		t.Fatalf("the holder ended: %s", holder.stderr)
	}
}

// --timeout stops the job's whole process group, not only its main
// process, and escalates to SIGKILL after --kill-after: here the main
// process ignores SIGTERM and a worker in its group exits on it.
func TestTimeoutStopsTheWholeGroup(t *testing.T) {
	dir := lockDir(t)
	lock, termed := filepath.Join(dir, "job.lock"), filepath.Join(dir, "termed")
	p := startGuard(t, "run", "--timeout", "200ms", "--kill-after", "300ms", "--lock", lock, "--", "sh", "-c",
		`sh -c 'trap "touch `+termed+`; exit 0" TERM; while :; do sleep 0.05; done' & trap "" TERM; while :; do sleep 0.05; done`)
	if code := p.wait(t); code != 128+9 || !strings.Contains(p.stderr.String(), "--timeout") {
		t.Fatalf("exit %d, want 137 (the main process ignores SIGTERM): %s", code, p.stderr)
	}
	if !exists(termed) {
		t.Fatal("the worker in the job's process group did not get SIGTERM on --timeout")
	}
	if held(t, lock) {
		t.Fatal("lock held after the timed-out run")
	}
}
