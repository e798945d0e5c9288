package instance

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"guard/internal/guardtest"
)

// Tests written against mutants of this package that the other tests let
// live: each pins a promise of the package doc that a small slip breaks.

// waitingIn reports whether /proc/locks lists this process blocked on a
// flock (a "->" line).
func waitingIn() bool {
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return false
	}
	self := strconv.Itoa(os.Getpid())
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[1] == "->" && f[2] == "FLOCK" && f[5] == self {
			return true
		}
	}
	return false
}

// fdsOn lists this process's descriptors that name target, as
// /proc/self/fd shows it (a deleted file's name ends in " (deleted)").
func fdsOn(t *testing.T, target string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == target {
			out = append(out, e.Name())
		}
	}
	return out
}

// A waiter that gets the flock on a file deleted while it waited finds that
// the path no longer names it and takes the lock on the file now at the
// path; the descriptor of the deleted one is closed, not kept locked.
func TestWaiterRetriesWhenTheFileWasDeleted(t *testing.T) {
	path := filepath.Join(tempLockDir(t), "a.lock")
	h := startHolder(t, path)
	h.expect(t, "locked")
	type result struct {
		le  Lease
		err error
	}
	got := make(chan result, 1)
	go func() {
		le, err := mustNew(t, path).Lock(context.Background())
		got <- result{le, err}
	}()
	guardtest.Eventually(t, "the waiter blocked in flock", waitingIn)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	h.say(t, "release")
	h.expect(t, "released")
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	hd, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if hd.State != Held || !hd.Verified || hd.Record.PID != os.Getpid() {
		t.Fatalf("after the wait, the path is %v (%s): the lease holds the deleted file, not the one at the path", hd.State, hd.Reason)
	}
	if err := r.le.Release(); err != nil {
		t.Fatal(err)
	}
	if fds := fdsOn(t, path+" (deleted)"); len(fds) > 0 {
		t.Fatalf("descriptors %v still open on the deleted lock file (its lock with them)", fds)
	}
}

// A run that finds the lock file empty (the run that created it found the
// holder of a deleted lock file of the path and gave up, leaving it empty)
// looks for that holder again, and is busy too.
func TestEmptyLockFileLooksForDeletedHolder(t *testing.T) {
	path := filepath.Join(tempLockDir(t), "a.lock")
	h := startHolder(t, path)
	h.expect(t, "locked")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	for _, run := range []string{"the run that creates the file", "the run that finds it empty"} {
		le, err := mustNew(t, path).TryLock(context.Background())
		var he *HeldError
		if !errors.As(err, &he) || he.Holder == nil || he.Holder.LockPID != h.cmd.Process.Pid {
			if err == nil {
				le.Release()
			}
			t.Fatalf("%s: %v, want busy, held by PID %d on the deleted file", run, err, h.cmd.Process.Pid)
		}
	}
	if st, err := os.Stat(path); err != nil || st.Size() != 0 {
		t.Fatalf("the new lock file: %v, size %d; want it left empty", err, st.Size())
	}
}

// Release closes, never unlocks: a child that inherited the locked
// descriptor keeps the lock until it ends.
func TestReleaseLeavesTheLockToAnInheritor(t *testing.T) {
	path := filepath.Join(tempLockDir(t), "a.lock")
	le, err := mustNew(t, path).TryLock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f, err := le.(*FileLease).Inherit()
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command("sleep", "1000")
	child.ExtraFiles = []*os.File{f}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	f.Close()
	if err := le.Release(); err != nil {
		t.Fatal(err)
	}
	if le2, err := mustNew(t, path).TryLock(context.Background()); !errors.Is(err, ErrHeld) {
		if err == nil {
			le2.Release()
		}
		t.Fatalf("TryLock after Release, while a child holds the inherited descriptor: %v, want busy", err)
	}
	child.Process.Kill()
	child.Wait()
	le3, err := mustNew(t, path).TryLock(context.Background())
	if err != nil {
		t.Fatalf("TryLock once the child is gone: %v", err)
	}
	le3.Release()
}
