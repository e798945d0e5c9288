package instance

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/guardtest"
)

func mustNew(t *testing.T, path string) *FileLocker {
	t.Helper()
	l, err := New(Options{Path: path, Name: "test", CheckInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestTryLockBusyNamesHolder(t *testing.T) {
	path := filepath.Join(tempLockDir(t), "a.lock")
	h := startHolder(t, path)
	h.expect(t, "locked")
	_, err := mustNew(t, path).TryLock(context.Background())
	var he *HeldError
	if !errors.As(err, &he) || !errors.Is(err, ErrHeld) {
		t.Fatalf("TryLock on a held lock: %v, want *HeldError", err)
	}
	if he.Holder == nil || he.Holder.Record == nil || he.Holder.Record.PID != h.cmd.Process.Pid || !he.Holder.Verified {
		t.Fatalf("holder = %+v, want verified PID %d", he.Holder, h.cmd.Process.Pid)
	}
}

func TestWaitWakesOnRelease(t *testing.T) {
	path := filepath.Join(tempLockDir(t), "a.lock")
	h := startHolder(t, path)
	first, _ := strconv.ParseUint(h.expect(t, "locked"), 10, 64)
	got := make(chan Lease, 1)
	errc := make(chan error, 1)
	go func() {
		le, err := mustNew(t, path).Lock(context.Background())
		errc <- err
		got <- le
	}()
	select {
	case err := <-errc:
		t.Fatalf("waiter returned while the lock was held: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	h.say(t, "release")
	h.expect(t, "released")
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	le := <-got
	defer le.Release()
	if le.Token() <= first {
		t.Fatalf("token %d after %d: not increasing", le.Token(), first)
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	path := filepath.Join(tempLockDir(t), "a.lock")
	h := startHolder(t, path)
	h.expect(t, "locked")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := mustNew(t, path).Lock(ctx)
	if !errors.Is(err, ErrHeld) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrHeld wrapping DeadlineExceeded", err)
	}
	// The abandoned waiter must not keep the lock once the holder is gone.
	h.say(t, "release")
	h.expect(t, "released")
	guardtest.Eventually(t, "lock free after an abandoned wait", func() bool {
		le, err := mustNew(t, path).TryLock(context.Background())
		if err == nil {
			le.Release()
			return true
		}
		return false
	})
}

func TestInspectStates(t *testing.T) {
	dir := tempLockDir(t)
	path := filepath.Join(dir, "a.lock")
	state := func() *Holder {
		t.Helper()
		h, err := Inspect(path)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	if s := state(); s.State != Free {
		t.Fatalf("no file: %v", s.State)
	}
	os.WriteFile(path, nil, 0o644)
	if s := state(); s.State != Free {
		t.Fatalf("empty file: %v", s.State)
	}
	h := startHolder(t, path)
	tok, _ := strconv.ParseUint(h.expect(t, "locked"), 10, 64)
	if s := state(); s.State != Held || !s.Verified || s.Record.Token != tok {
		t.Fatalf("held: %+v", s)
	}
	h.say(t, "release")
	h.expect(t, "released")
	if s := state(); s.State != Free || s.Record == nil || s.Record.LastPID != h.cmd.Process.Pid {
		t.Fatalf("released: %+v", s)
	}
	h2 := startHolder(t, path)
	tok2, _ := strconv.ParseUint(h2.expect(t, "locked"), 10, 64)
	h2.say(t, "crash")
	h2.cmd.Wait()
	s := state()
	if s.State != Stale || s.Record.PID != h2.cmd.Process.Pid {
		t.Fatalf("crashed: %+v", s)
	}
	le, err := mustNew(t, path).TryLock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer le.Release()
	if !(tok < tok2 && tok2 < le.Token()) {
		t.Fatalf("tokens %d, %d, %d: not strictly increasing", tok, tok2, le.Token())
	}
}

func TestLostWhenDeletedOrReplaced(t *testing.T) {
	for _, how := range []string{"deleted", "replaced"} {
		t.Run(how, func(t *testing.T) {
			dir := tempLockDir(t)
			path := filepath.Join(dir, "a.lock")
			l := mustNew(t, path)
			le, err := l.TryLock(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer le.Release()
			if how == "deleted" {
				os.Remove(path)
			} else {
				os.WriteFile(path+".new", nil, 0o644)
				os.Rename(path+".new", path)
			}
			select {
			case <-le.Lost():
			case <-time.After(20 * time.Second):
				t.Fatal("loss not noticed")
			}
			if !errors.Is(le.Err(), ErrLost) {
				t.Fatalf("Err() = %v", le.Err())
			}
			// The path is free again: a new acquisition gets a larger token.
			le2, err := l.TryLock(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer le2.Release()
			if le2.Token() <= le.Token() {
				t.Fatalf("token %d after %d", le2.Token(), le.Token())
			}
		})
	}
}

func TestReleaseIdempotentNeverRemoves(t *testing.T) {
	path := filepath.Join(tempLockDir(t), "a.lock")
	le, err := mustNew(t, path).TryLock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := le.Release(); err != nil {
		t.Fatal(err)
	}
	if err := le.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("lock file gone after Release: %v", err)
	}
}
