package instance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/internal/guardtest"
	"github.com/guardkit/guard/internal/proc"
)

// Tests written against mutants of this package that the other tests let
// live: each pins a promise of the package doc that a small slip breaks.

// The test binary doubles as one more helper: GUARD_TEST_LOCK_AND_CLOSE=1
// takes the flock on its descriptor 3, closes it (the lock stays with the
// description its parent keeps), says "locked" and waits for its stdin to
// close: a live locker that no longer has the lock file open.
func init() {
	if os.Getenv("GUARD_TEST_LOCK_AND_CLOSE") == "1" {
		if unix.Flock(3, unix.LOCK_EX|unix.LOCK_NB) != nil || unix.Close(3) != nil {
			os.Exit(1)
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
}

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
	got := blockedWaiter(t, path)
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

// orphanRecord writes into f a record naming pid, started at start, as
// the holder.
func orphanRecord(t *testing.T, f *os.File, pid int, start uint64) {
	t.Helper()
	boot, err := proc.BootID()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := proc.PIDNamespace(0)
	if err != nil {
		t.Fatal(err)
	}
	rec := Record{PID: pid, StartTicks: start, BootID: boot, PIDNS: ns, Host: "h", Acquired: time.Now(), Name: "job", Token: 9}
	if _, err := f.WriteAt(rec.Marshal(), 0); err != nil {
		t.Fatal(err)
	}
}

// A run that finds the lock busy, held by the job of a dead holder, names
// those processes: its quick look (/proc/locks only) cannot prove anything
// once the recorded holder is dead, so it falls back to the full look.
func TestBusyNamesOrphanedJob(t *testing.T) {
	path := filepath.Join(tempLockDir(t), "job.lock")
	f, dead := lockThroughDeadHelper(t, path)
	orphanRecord(t, f, dead, 1)
	child := inheritor(t, f)
	f.Close()
	_, err := mustNew(t, path).TryLock(context.Background())
	var he *HeldError
	if !errors.As(err, &he) || he.Holder == nil {
		t.Fatalf("TryLock: %v, want busy", err)
	}
	if h := he.Holder; h.State != Held || !h.Orphaned || len(h.Procs) != 1 || h.Procs[0].PID != child.Process.Pid {
		t.Fatalf("busy with %v orphaned %v procs %+v (%s); want held by the orphaned PID %d", h.State, h.Orphaned, h.Procs, h.Reason, child.Process.Pid)
	}
}

// A process that started before the recorded holder cannot have inherited
// the lock from it: the lock is not the orphaned job's, and nothing proves
// the process may be signalled.
func TestOlderProcessIsNoOrphan(t *testing.T) {
	path := filepath.Join(tempLockDir(t), "job.lock")
	f, dead := lockThroughDeadHelper(t, path)
	me, err := proc.ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// The record says the dead holder started after this process, which
	// keeps the locked descriptor.
	orphanRecord(t, f, dead, me.StartTicks+1)
	h, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if h.State != Held || h.Orphaned || len(h.Procs) != 1 || h.Procs[0].PID != os.Getpid() {
		t.Fatalf("Inspect = %v orphaned %v procs %+v (%s); want held, not orphaned, by this process", h.State, h.Orphaned, h.Procs, h.Reason)
	}
}

// A recorded holder that is a zombie (dead, not yet reaped by its parent)
// is gone: the job's processes that keep its lock are its orphans.
func TestZombieHolderIsGone(t *testing.T) {
	path := filepath.Join(tempLockDir(t), "job.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	helper := exec.Command(os.Args[0], "-test.run=^TestFlockHelper$")
	helper.Env = append(os.Environ(), "GUARD_TEST_FLOCK_FD=3")
	helper.ExtraFiles = []*os.File{f}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := false
	t.Cleanup(func() {
		if !reaped {
			helper.Wait()
		}
	})
	pid := helper.Process.Pid
	var st proc.Stat
	guardtest.Eventually(t, "the helper to be a zombie", func() bool {
		st, err = proc.ReadStat(pid)
		return err == nil && st.Zombie()
	})
	orphanRecord(t, f, pid, st.StartTicks)
	child := inheritor(t, f)
	f.Close()
	h, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if h.State != Held || !h.Orphaned || len(h.Procs) != 1 || h.Procs[0].PID != child.Process.Pid || !strings.Contains(h.Reason, "dead") {
		t.Fatalf("Inspect = %v orphaned %v procs %+v (%s); want the zombie holder's job orphaned", h.State, h.Orphaned, h.Procs, h.Reason)
	}
	if err := helper.Wait(); err != nil {
		t.Fatalf("flock helper: %v", err)
	}
	reaped = true
}

// lockedFile creates path and takes the flock on it through this process.
func lockedFile(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	return f
}

// startOf returns pid's start time.
func startOf(t *testing.T, pid int) uint64 {
	t.Helper()
	st, err := proc.ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	return st.StartTicks
}

// inspectUnverified inspects path and fails unless the lock is held and its
// holder unverified: nothing proves the process that the record names.
func inspectUnverified(t *testing.T, path, why string) *Holder {
	t.Helper()
	h, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if h.State != Held || h.Verified || h.Orphaned || !strings.Contains(h.Reason, why) {
		t.Fatalf("Inspect = %v verified %v orphaned %v (%s); want held, unverified: %s", h.State, h.Verified, h.Orphaned, h.Reason, why)
	}
	for _, p := range h.Procs {
		if p.Recorded {
			t.Fatalf("holder %+v marked as the recorded one", p)
		}
	}
	return h
}

// A holder whose PID names a process that started at another time than the
// record says is not the recorded holder (the PID was reused), even when
// that process holds the lock and has the file open.
func TestReusedPIDIsNotVerified(t *testing.T) {
	path := filepath.Join(tempLockDir(t), "job.lock")
	f := lockedFile(t, path)
	child := inheritor(t, f)
	orphanRecord(t, f, child.Process.Pid, startOf(t, child.Process.Pid)+1)
	inspectUnverified(t, path, "PID reused")
}

// A recorded holder that the kernel lists as the locker but that no longer
// has the lock file open is not verified (its lock lives on in descriptors
// it handed on).
func TestLockerWithoutTheFileIsNotVerified(t *testing.T) {
	path := filepath.Join(tempLockDir(t), "job.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := exec.Command(os.Args[0], "-test.run=^$")
	c.Env = append(os.Environ(), "GUARD_TEST_LOCK_AND_CLOSE=1")
	c.ExtraFiles = []*os.File{f}
	in, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); c.Wait() })
	if sc := bufio.NewScanner(out); !sc.Scan() || sc.Text() != "locked" {
		t.Fatalf("helper: %q %v", sc.Text(), sc.Err())
	}
	orphanRecord(t, f, c.Process.Pid, startOf(t, c.Process.Pid))
	inspectUnverified(t, path, "does not have the lock file open")
}

// A recorded holder that has the lock file open but neither took the lock
// nor holds the locked description is not verified: another process holds
// the lock.
func TestOpenerWithoutTheLockIsNotVerified(t *testing.T) {
	path := filepath.Join(tempLockDir(t), "job.lock")
	f := lockedFile(t, path)
	other, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	child := inheritor(t, other)
	orphanRecord(t, f, child.Process.Pid, startOf(t, child.Process.Pid))
	inspectUnverified(t, path, "as the locker, not the recorded PID")
}

// waited is what a blocked Lock returned.
type waited struct {
	le  Lease
	err error
}

// blockedWaiter starts a Lock on path and returns once it waits in
// flock(2); its result arrives on the channel.
func blockedWaiter(t *testing.T, path string) <-chan waited {
	t.Helper()
	got := make(chan waited, 1)
	go func() {
		le, err := mustNew(t, path).Lock(context.Background())
		got <- waited{le, err}
	}()
	guardtest.Eventually(t, "the waiter blocked in flock", waitingIn)
	return got
}
