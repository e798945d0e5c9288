package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guardkit/guard/etcd/internal/etcdtest"
	"github.com/guardkit/guard/internal/guardtest"
)

// Under systemd's watchdog, a holder cut off from etcd stops pinging as soon
// as its lease is in jeopardy (renewal overdue), well before the lease ends,
// so that systemd restarts it; it never says READY=1 again. Read from a real
// unixgram NOTIFY_SOCKET, in order.
func TestWatchdogStopsInJeopardy(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			got = append(got, string(buf[:n]))
			mu.Unlock()
		}
	}()
	defer conn.Close()
	all := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), got...) }
	find := func(from int, prefix string) int {
		g := all()
		for i := from; i < len(g); i++ {
			if strings.HasPrefix(g[i], prefix) {
				return i
			}
		}
		return -1
	}
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "300000")
	t.Setenv("WATCHDOG_PID", "")

	px := etcdtest.NewProxy(t, endpoint)
	name := fmt.Sprintf("watchdog-%d", time.Now().UnixNano())
	h := start(t, "run", "--etcd", px.Addr(), "--ttl", "6s", "--lease-grace", "1s", "--kill-after", "2s",
		"--name", name, "--", "sleep", "300")
	guardtest.Eventually(t, "READY=1 and pings", func() bool {
		r := find(0, "READY=1\nSTATUS=running job PID ")
		return r >= 0 && find(r, "WATCHDOG=1") >= 0
	})
	px.Blackhole()
	var at int
	guardtest.Eventually(t, "the jeopardy STATUS=", func() bool {
		at = find(0, "STATUS=lease renewal overdue")
		return at >= 0
	})
	if code := h.wait(t); code != 69 {
		t.Fatalf("cut-off holder exit %d, want 69; %s", code, h.stderr.String())
	}
	// Every datagram guard sent is read once a marker sent now is (FIFO).
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("TEST_MARKER=1"))
	c.Close()
	guardtest.Eventually(t, "the marker", func() bool { return find(at, "TEST_MARKER=1") >= 0 })
	after := all()[at:]
	for _, d := range after {
		if d == "WATCHDOG=1" || strings.Contains(d, "READY=1") {
			t.Fatalf("%q after the lease went into jeopardy: %q", d, after)
		}
	}
	px.Close()
}
