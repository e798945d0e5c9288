package etcdlock

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/guardkit/guard/etcd/internal/etcdtest"
)

// endpoint is the client address of the test etcd, one node for the whole
// package, started by TestMain.
var endpoint string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "etcdlock-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	e, ep, err := etcdtest.Start(dir)
	if err != nil {
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, "start embedded etcd:", err)
		os.Exit(1)
	}
	endpoint = ep
	code := m.Run()
	e.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// newClient connects to addr (the etcd, or a proxy in front of it).
func newClient(t *testing.T, addr string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// names gives each test (each run of it, with -count) its own lock.
var (
	names sync.Map // *testing.T -> name
	runs  atomic.Int64
)

// testOptions are short deadlines for tests: TTL 2s (etcd's minimum with
// its default election timeout), Margin 250ms.
func testOptions(t *testing.T) Options {
	name, _ := names.LoadOrStore(t, fmt.Sprintf("%s-%d", strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()), runs.Add(1)))
	return Options{Name: name.(string), Command: []string{"sleep", "1000"}, TTL: 2 * time.Second,
		Grace: 500 * time.Millisecond, Margin: 250 * time.Millisecond}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// release releases le at the end of the test.
func release(t *testing.T, le *Lease) {
	t.Cleanup(func() { le.Release() })
}

// tryLock takes l or fails the test.
func tryLock(t *testing.T, l *Locker) *Lease {
	t.Helper()
	le, err := l.TryLock(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatalf("TryLock: %v", err)
	}
	release(t, le.(*Lease))
	return le.(*Lease)
}

// waitQueue waits until l's queue has n contenders.
func waitQueue(t *testing.T, l *Locker, n int) []Contender {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		q, err := l.Queue(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if len(q) == n {
			return q
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue has %d contenders, want %d", len(q), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// closedWithin reports whether ch closes within d.
func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	default:
	}
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}
