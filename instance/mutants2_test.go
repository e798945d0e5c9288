package instance

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Promise 5: a waiter that gets the flock on a file that was replaced at
// the path while it waited (a new file renamed over it) finds that the path
// no longer names the file it locked and takes the lock on the one now
// there. Otherwise it would hold a file nobody else can find, and a second
// holder could lock the file at the path.
func TestWaiterRetriesWhenTheFileWasReplaced(t *testing.T) {
	dir := tempLockDir(t)
	path := filepath.Join(dir, "a.lock")
	h := startHolder(t, path)
	h.expect(t, "locked")
	got := blockedWaiter(t, path)
	tmp := filepath.Join(dir, "new")
	if err := os.WriteFile(tmp, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	h.say(t, "release")
	h.expect(t, "released")
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.le.Release()
	hd, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if hd.State != Held || !hd.Verified || hd.Record.PID != os.Getpid() {
		t.Fatalf("after the wait, the path is %v (%s): the lease holds the replaced file, not the one at the path", hd.State, hd.Reason)
	}
	if le, err := mustNew(t, path).TryLock(context.Background()); !errors.Is(err, ErrHeld) {
		if le != nil {
			le.Release()
		}
		t.Fatalf("a second TryLock of the path = %v, want ErrHeld: two holders", err)
	}
}

// RecordSuccess after Release does nothing and returns nil (as documented):
// the lease's descriptors are closed, and their numbers may name other
// files by then.
func TestRecordSuccessAfterReleaseDoesNothing(t *testing.T) {
	path := filepath.Join(tempLockDir(t), "a.lock")
	le, err := mustNew(t, path).Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := le.Release(); err != nil {
		t.Fatal(err)
	}
	if err := le.(SuccessRecorder).RecordSuccess(time.Now()); err != nil {
		t.Fatalf("RecordSuccess after Release = %v, want nil", err)
	}
	hd, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if hd.Record == nil || !hd.Record.LastSuccess.IsZero() {
		t.Fatalf("record after a RecordSuccess that came after Release: %+v", hd.Record)
	}
}
