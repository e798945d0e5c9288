package etcdlock

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guardkit/guard/instance"
)

func TestTryLockBusyNamesHolder(t *testing.T) {
	cli := newClient(t, endpoint)
	l := New(cli, testOptions(t))
	held := tryLock(t, l)
	if held.Token() == 0 || held.Record().Token != held.Token() || held.Record().PID != os.Getpid() {
		t.Fatalf("lease: token %d, record %+v", held.Token(), held.Record())
	}
	_, err := New(newClient(t, endpoint), testOptions(t)).TryLock(ctxT(t, 5*time.Second))
	var he *instance.HeldError
	if !errors.As(err, &he) || !errors.Is(err, instance.ErrHeld) {
		t.Fatalf("TryLock on a held lock: %v, want *HeldError", err)
	}
	h := he.Holder
	if h == nil || h.State != instance.Held || h.Record == nil || h.Record.PID != os.Getpid() ||
		h.Record.Token != held.Token() || h.Record.Name != l.opts.Name {
		t.Fatalf("holder = %+v", h)
	}
	if !strings.Contains(err.Error(), "held by PID") {
		t.Fatalf("message does not name the holder: %v", err)
	}
	if q := waitQueue(t, l, 1); q[0].Revision != int64(held.Token()) {
		t.Fatalf("queue after a busy TryLock: %+v", q)
	}
}

// TestFIFO: waiters get the lock in the order they came, each with a larger
// token than the one before.
func TestFIFO(t *testing.T) {
	cli := newClient(t, endpoint)
	l := New(cli, testOptions(t))
	first := tryLock(t, l)
	var (
		mu     sync.Mutex
		order  []int
		tokens = []uint64{first.Token()}
		wg     sync.WaitGroup
	)
	for i := 1; i <= 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			le, err := New(cli, testOptions(t)).Lock(ctxT(t, 30*time.Second))
			if err != nil {
				t.Errorf("waiter %d: %v", i, err)
				return
			}
			mu.Lock()
			order, tokens = append(order, i), append(tokens, le.Token())
			mu.Unlock()
			if err := le.Release(); err != nil {
				t.Errorf("waiter %d: release: %v", i, err)
			}
		}()
		waitQueue(t, l, i+1)
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if len(order) != 3 || order[0] != 1 || order[1] != 2 || order[2] != 3 {
		t.Fatalf("order %v, want [1 2 3]", order)
	}
	for i := 1; i < len(tokens); i++ {
		if tokens[i] <= tokens[i-1] {
			t.Fatalf("tokens %v do not strictly increase", tokens)
		}
	}
}

func TestTokensIncrease(t *testing.T) {
	l := New(newClient(t, endpoint), testOptions(t))
	var prev uint64
	for i := range 5 {
		le, err := l.TryLock(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if le.Token() <= prev {
			t.Fatalf("acquisition %d: token %d after %d", i, le.Token(), prev)
		}
		prev = le.Token()
		if err := le.Release(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReleaseInspect: a clean release leaves Free with the last record; a
// holder whose lease went away without a release leaves Stale.
func TestReleaseInspect(t *testing.T) {
	cli := newClient(t, endpoint)
	l := New(cli, testOptions(t))
	if h, err := l.Inspect(ctxT(t, 5*time.Second)); err != nil || h.State != instance.Free || h.Record != nil {
		t.Fatalf("never held: %+v, %v", h, err)
	}
	le := tryLock(t, l)
	if h, err := l.Inspect(ctxT(t, 5*time.Second)); err != nil || h.State != instance.Held || h.Record.Token != le.Token() {
		t.Fatalf("held: %+v, %v", h, err)
	}
	if err := le.Release(); err != nil {
		t.Fatal(err)
	}
	if err := le.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	h, err := l.Inspect(ctxT(t, 5*time.Second))
	if err != nil || h.State != instance.Free || h.Record == nil || h.Record.LastPID != os.Getpid() ||
		h.Record.Released.IsZero() || h.Record.Token != le.Token() {
		t.Fatalf("after release: %+v (%+v), %v", h, h.Record, err)
	}
	t.Logf("free: %s", h.Reason)

	le = tryLock(t, l)
	if _, err := cli.Revoke(ctxT(t, 5*time.Second), le.ID()); err != nil {
		t.Fatal(err)
	}
	h, err = l.Inspect(ctxT(t, 5*time.Second))
	if err != nil || h.State != instance.Stale || h.Record == nil || h.Record.PID != os.Getpid() || h.Record.Token != le.Token() {
		t.Fatalf("after the lease was revoked: %+v, %v", h, err)
	}
	t.Logf("stale: %s", h.Reason)
	if err := le.Release(); !errors.Is(err, instance.ErrLost) {
		t.Fatalf("Release of a revoked lease: %v, want ErrLost", err)
	}
	if h, _ := l.Inspect(ctxT(t, 5*time.Second)); h.State != instance.Stale {
		t.Fatalf("a lost lease's Release changed the last record: %+v", h)
	}
}

// TestInspectQueue: Inspect names the holder and counts the waiters; Queue
// lists them in order.
func TestInspectQueue(t *testing.T) {
	cli := newClient(t, endpoint)
	l := New(cli, testOptions(t))
	le := tryLock(t, l)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := New(cli, testOptions(t)).Lock(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("waiter %d: %v, want cancelled", i, err)
			}
		}()
		waitQueue(t, l, i+2)
	}
	h, err := l.Inspect(ctxT(t, 5*time.Second))
	if err != nil || h.State != instance.Held || h.Record.Token != le.Token() || !strings.Contains(h.Reason, "2 waiting, in order: PID") ||
		strings.Count(h.Reason, " since ") != 2 || !strings.Contains(h.Reason, "lease TTL left") {
		t.Fatalf("inspect: %+v, %v; want the waiters in order and the TTL left", h, err)
	}
	t.Logf("%s", h.Describe())
	q := waitQueue(t, l, 3)
	if q[0].Revision != int64(le.Token()) || q[0].Lease != le.ID() || q[1].Revision >= q[2].Revision || q[1].Record == nil {
		t.Fatalf("queue: %+v", q)
	}
}

// TestLockCancelled: a wait that ctx ends is busy, wraps ctx.Err(), and
// leaves no key behind.
func TestLockCancelled(t *testing.T) {
	cli := newClient(t, endpoint)
	l := New(cli, testOptions(t))
	le := tryLock(t, l)
	start := time.Now()
	_, err := New(cli, testOptions(t)).Lock(ctxT(t, 300*time.Millisecond))
	if !errors.Is(err, instance.ErrHeld) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrHeld wrapping DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the wait took %v", d)
	}
	var he *instance.HeldError
	if errors.As(err, &he); he.Holder == nil || he.Holder.Record == nil || he.Holder.Record.Token != le.Token() {
		t.Fatalf("the error does not name the holder: %v", err)
	}
	waitQueue(t, l, 1)
	// The next waiter is served right after the holder: nobody is stuck.
	got := make(chan error, 1)
	go func() {
		le2, err := New(cli, testOptions(t)).Lock(ctxT(t, 10*time.Second))
		if err == nil {
			err = le2.Release()
		}
		got <- err
	}()
	waitQueue(t, l, 2)
	le.Release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// TestRevokeLosesAtOnce: revoking the holder's lease from another client
// closes Ending and Lost at once, and the next waiter gets the lock.
func TestRevokeLosesAtOnce(t *testing.T) {
	l := New(newClient(t, endpoint), testOptions(t))
	le := tryLock(t, l)
	other := newClient(t, endpoint)
	start := time.Now()
	if _, err := other.Revoke(ctxT(t, 5*time.Second), le.ID()); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(le.Lost(), time.Second) {
		t.Fatal("Lost not closed within 1s of the revocation")
	}
	t.Logf("Lost %v after the revocation", time.Since(start))
	if !closedWithin(le.Ending(), 0) || !errors.Is(le.Err(), ErrRevoked) || !errors.Is(le.Err(), instance.ErrLost) {
		t.Fatalf("Ending closed %v, Err %v", closedWithin(le.Ending(), 0), le.Err())
	}
}

// TestKeepAliveTTLZero: a keepalive answered with TTL 0 (or lease not
// found) closes Lost at the first renewal, long before the deadline.
func TestKeepAliveTTLZero(t *testing.T) {
	l := New(newClient(t, endpoint), testOptions(t))
	l.keepAliveOnce = keepAliveTTL0
	le := tryLock(t, l)
	if !closedWithin(le.Lost(), l.opts.TTL/3+time.Second) {
		t.Fatal("Lost not closed after a keepalive answered with TTL 0")
	}
	if !errors.Is(le.Err(), ErrExpired) {
		t.Fatalf("Err = %v, want ErrExpired", le.Err())
	}
}

// TestEndingStaysClosed: keepalives that fail for a while close Jeopardy
// and Ending; when they succeed again before the deadline, Lost stays
// open and Ending stays closed.
func TestEndingStaysClosed(t *testing.T) {
	opts := testOptions(t)
	opts.TTL, opts.Grace = 3*time.Second, time.Second
	l := New(newClient(t, endpoint), opts)
	var failing sync.Mutex
	failing.Lock()
	real := l.keepAliveOnce
	l.keepAliveOnce = blockedUntil(&failing, real)
	le := tryLock(t, l)
	if !closedWithin(le.Ending(), 3*time.Second) {
		t.Fatal("Ending not closed while keepalives fail")
	}
	if !closedWithin(le.Jeopardy(), 0) || closedWithin(le.Lost(), 0) {
		t.Fatalf("Jeopardy closed %v, Lost closed %v (%v), at Ending", closedWithin(le.Jeopardy(), 0), closedWithin(le.Lost(), 0), le.Err())
	}
	failing.Unlock()
	if closedWithin(le.Lost(), 2*time.Second) {
		t.Fatalf("Lost closed although keepalives resumed: %v", le.Err())
	}
	if !closedWithin(le.Ending(), 0) {
		t.Fatal("Ending reopened")
	}
}

// TestWaiterRevokedRequeues: a waiter whose lease is revoked starts again
// with a new lease at the end of the queue, and still gets the lock.
func TestWaiterRevokedRequeues(t *testing.T) {
	cli := newClient(t, endpoint)
	l := New(cli, testOptions(t))
	le := tryLock(t, l)
	got := make(chan error, 1)
	go func() {
		w, err := New(cli, testOptions(t)).Lock(ctxT(t, 20*time.Second))
		if err == nil {
			err = w.Release()
		}
		got <- err
	}()
	q := waitQueue(t, l, 2)
	if _, err := cli.Revoke(ctxT(t, 5*time.Second), q[1].Lease); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		q2, err := l.Queue(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if len(q2) == 2 && q2[1].Lease != q[1].Lease {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the waiter did not come back: %+v", q2)
		}
		time.Sleep(20 * time.Millisecond)
	}
	le.Release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// TestLastSuccessKept: the last success a holder records travels with the
// lock to the next holder (guard run --min-interval), through the last
// record; a holder that recorded none keeps the previous one.
func TestLastSuccessKept(t *testing.T) {
	l := New(newClient(t, endpoint), testOptions(t))
	le, err := l.TryLock(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got := le.Record().LastSuccess; !got.IsZero() {
		t.Fatalf("a fresh lock's last success = %v, want none", got)
	}
	when := time.Now().Add(-time.Minute).UTC().Round(time.Microsecond)
	if err := le.(instance.SuccessRecorder).RecordSuccess(when); err != nil {
		t.Fatal(err)
	}
	if err := le.Release(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the second holder records nothing: the first's stays
		le, err = l.TryLock(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if got := le.Record().LastSuccess; !got.Equal(when) {
			t.Fatalf("holder %d: last success = %v, want %v", i+2, got, when)
		}
		if err := le.Release(); err != nil {
			t.Fatal(err)
		}
	}
}
