package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startServer starts a Server for o on 127.0.0.1:0 and shuts it down at the
// end of the test. It returns the server and its base URL.
func startServer(t *testing.T, o Options) (*Server, string) {
	t.Helper()
	o.Addr = "127.0.0.1:0"
	s := NewServer(o)
	addr, err := s.Start(context.Background())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s, "http://" + addr.String()
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func TestServerLifecycle(t *testing.T) {
	var st State
	st.Acquired(1, 1, t0, 0)
	s, base := startServer(t, Options{Lock: &st, Gatherer: NewRegistry(&st, BuildInfo{})})
	if code, body := get(t, http.DefaultClient, base+"/livez"); code != 200 || body != "ok" {
		t.Errorf("/livez = %d %q", code, body)
	}
	if code, body := get(t, http.DefaultClient, base+"/metrics"); code != 200 || !strings.Contains(body, "guard_lock_held 1\n") {
		t.Errorf("/metrics = %d, body lacks guard_lock_held 1:\n%s", code, body)
	}
	if got := s.Addr().String(); "http://"+got != base {
		t.Errorf("Addr = %s, want %s", got, base)
	}
	if _, err := s.Start(context.Background()); !errors.Is(err, ErrServerStarted) {
		t.Errorf("second Start = %v, want ErrServerStarted", err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		t.Error("dial after Shutdown succeeded")
	}
}

func TestServerStartErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, addr := range []string{"", busy.Addr().String(), "127.0.0.1:notaport", "256.0.0.1:0"} {
		s := NewServer(Options{Addr: addr})
		if a, err := s.Start(context.Background()); err == nil {
			t.Errorf("Start(%q) = %v, nil; want an error", addr, a)
			_ = s.Shutdown(context.Background())
		}
	}
}

func TestServerShutdownUnstarted(t *testing.T) {
	s := NewServer(Options{Addr: "127.0.0.1:0"})
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown before Start = %v", err)
	}
	if _, err := s.Start(context.Background()); !errors.Is(err, ErrServerStarted) {
		t.Errorf("Start after Shutdown = %v, want ErrServerStarted", err)
	}
}

func TestServerDefaults(t *testing.T) {
	s := NewServer(Options{Addr: "127.0.0.1:0"}).srv
	if s.ReadHeaderTimeout != DefaultReadHeaderTimeout || s.ReadTimeout != DefaultReadTimeout ||
		s.WriteTimeout != DefaultWriteTimeout || s.IdleTimeout != DefaultIdleTimeout ||
		s.MaxHeaderBytes != DefaultMaxHeaderBytes {
		t.Errorf("defaults not applied: %+v", s)
	}
}

// TestServerShutdownDeadline: a connection that never finishes its request
// cannot hold Shutdown past its deadline.
func TestServerShutdownDeadline(t *testing.T) {
	s := NewServer(Options{Addr: "127.0.0.1:0", ReadHeaderTimeout: time.Minute, ReadTimeout: time.Minute})
	addr, err := s.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /livez HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the server read the partial request
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Errorf("stalled connection not closed by Shutdown: %v", err)
	}
}

func TestServerNoDebugEndpoints(t *testing.T) {
	_, base := startServer(t, Options{})
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/goroutine", "/debug/vars", "/"} {
		if code, _ := get(t, http.DefaultClient, base+p); code != 404 {
			t.Errorf("GET %s = %d, want 404", p, code)
		}
	}
}

// TestServerSlowloris: 300 connections that send part of their headers and
// stall neither stop /livez from answering nor outlive ReadHeaderTimeout.
func TestServerSlowloris(t *testing.T) {
	const n = 300
	_, base := startServer(t, Options{
		ReadHeaderTimeout: 500 * time.Millisecond, ReadTimeout: time.Second,
		WriteTimeout: time.Second, IdleTimeout: time.Second,
	})
	addr := strings.TrimPrefix(base, "http://")
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		if _, err := fmt.Fprintf(c, "GET /livez HTTP/1.1\r\nHost: x\r\nX-Stall-%d: ", i); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	client := &http.Client{Timeout: 2 * time.Second}
	start := time.Now()
	if code, _ := get(t, client, base+"/livez"); code != 200 {
		t.Errorf("/livez with %d stalled connections = %d", n, code)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("/livez with %d stalled connections took %v", n, d)
	}
	deadline := time.Now().Add(5 * time.Second)
	for i, c := range conns {
		_ = c.SetReadDeadline(deadline)
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("stalled connection %d still open 5s after a 500ms header timeout: %v", i, err)
		}
	}
}

// TestServerRandomPaths: requests to arbitrary paths get 404 and add no
// metric series.
func TestServerRandomPaths(t *testing.T) {
	var st State
	reg := NewRegistry(&st, BuildInfo{})
	_, base := startServer(t, Options{Lock: &st, Gatherer: reg})
	before := countSeries(t, reg)
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/"
	for i := range 300 {
		var b strings.Builder
		b.WriteString("/r")
		for range 1 + rand.IntN(40) {
			if rand.IntN(8) == 0 {
				fmt.Fprintf(&b, "%%%02X", rand.IntN(256)) // any byte, escaped
			} else {
				b.WriteByte(alphabet[rand.IntN(len(alphabet))])
			}
		}
		if code, _ := get(t, http.DefaultClient, base+b.String()); code != 404 {
			t.Fatalf("request %d GET %s = %d, want 404", i, b.String(), code)
		}
	}
	if after := countSeries(t, reg); after != before {
		t.Errorf("series: %d before, %d after 300 random paths", before, after)
	}
}
