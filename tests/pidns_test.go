package tests

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/guardkit/guard/internal/guardtest"
)

// --pid-namespace: when guard itself is SIGKILLed, nothing of the job's tree
// survives it, not even a process that ignores every signal it can and that
// left the job's process group: the kernel kills the namespace with its
// init. Without the option that process would keep the lock (Promise 6).
func TestPIDNamespaceTreeDiesWithGuard(t *testing.T) {
	guardtest.RequirePeer(t, "flock", "util-linux")
	guardtest.RequirePeer(t, "setsid", "util-linux")
	dir := lockDir(t)
	lock, witness, ready := filepath.Join(dir, "job.lock"), filepath.Join(dir, "witness"), filepath.Join(dir, "ready")
	job := fmt.Sprintf(`setsid sh -c 'trap "" TERM HUP INT; exec flock %s sleep 300' & until flock -n -E 99 %[1]s true; [ $? -eq 99 ]; do sleep 0.01; done; touch %s; wait`, witness, ready)
	p := startGuard(t, "run", "--pid-namespace", "--lock", lock, "--", "sh", "-c", job)
	guardtest.Eventually(t, "the leftover to hold the witness", func() bool { return exists(ready) })
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait(t)
	guardtest.Eventually(t, "the witness free: the whole tree died with guard", func() bool { return witnessFree(t, witness) })
	if r := guard(t, "run", "--lock", lock, "--", "true"); r.code != 0 {
		t.Fatalf("the lock after guard was SIGKILLed: exit %d %s", r.code, r.stderr)
	}
}

// --pid-namespace keeps the leftovers policy (kill: the rest of the tree is
// stopped when the main process ends) and the job's exit status, and does
// not go with --leftovers ignore.
func TestPIDNamespaceLeftoversAndStatus(t *testing.T) {
	dir := lockDir(t)
	lock := filepath.Join(dir, "job.lock")
	if r := guard(t, "run", "--pid-namespace", "--lock", lock, "--", "sh", "-c", "sleep 300 & exit 7"); r.code != 7 {
		t.Fatalf("exit %d (%s), want the job's 7 once its leftover is stopped", r.code, r.stderr)
	}
	if r := guard(t, "run", "--pid-namespace", "--leftovers", "ignore", "--lock", lock, "--", "true"); r.code != 64 {
		t.Fatalf("--pid-namespace --leftovers ignore: exit %d, want 64", r.code)
	}
}
