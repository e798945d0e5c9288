package etcdlock

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/guardkit/guard/etcd/internal/etcdtest"
)

func TestDial(t *testing.T) {
	cli, err := Dial(context.Background(), Config{Endpoints: []string{endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	cli.Close()
}

// TestDialUnavailable: an etcd that refuses or never answers is
// ErrUnavailable within the dial timeout.
func TestDialUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	silent := etcdtest.NewProxy(t, endpoint)
	silent.Blackhole()
	for name, addr := range map[string]string{"refused": refused, "blackholed": silent.Addr()} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			cli, err := Dial(context.Background(), Config{Endpoints: []string{addr}, DialTimeout: 500 * time.Millisecond})
			if err == nil {
				cli.Close()
			}
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Dial: %v, want ErrUnavailable", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("Dial took %v with a 500ms timeout", d)
			}
		})
	}
}

// TestDialEnv: etcdctl's variables fill what is not given, except the
// endpoints.
func TestDialEnv(t *testing.T) {
	t.Setenv("ETCDCTL_ENDPOINTS", endpoint)
	if _, err := Dial(context.Background(), Config{}); err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Dial without endpoints: %v, want a configuration error", err)
	}
	env := map[string]string{"ETCDCTL_CACERT": "/ca", "ETCDCTL_CERT": "/c", "ETCDCTL_KEY": "/k",
		"ETCDCTL_USER": "root", "ETCDCTL_PASSWORD": "pw", "ETCDCTL_DIAL_TIMEOUT": "3s"}
	c := Config{Cert: "/given"}.withEnv(func(k string) string { return env[k] })
	if c.CACert != "/ca" || c.Cert != "/given" || c.Key != "/k" || c.User != "root:pw" || c.DialTimeout != 3*time.Second || c.Endpoints != nil {
		t.Fatalf("withEnv: %+v", c)
	}
	if c := (Config{PasswordFile: "/pw"}).withEnv(func(k string) string { return env[k] }); c.User != "" {
		t.Fatalf("ETCDCTL_USER used with a password file: %+v", c)
	}
	if _, err := Dial(context.Background(), Config{Endpoints: []string{endpoint}, CACert: "/nonexistent"}); err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Dial with a missing CA file: %v", err)
	}
}

func TestOptionsCheck(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		ok   bool
	}{
		{"defaults", Options{Name: "backup"}, true},
		{"key", Options{Key: "/jobs/backup/"}, true},
		{"nothing", Options{}, false},
		{"slash in name", Options{Name: "a/b"}, false},
		{"key without slash", Options{Key: "/jobs/backup"}, false},
		{"short ttl", Options{Name: "x", TTL: 3 * time.Second}, false},
		{"short ttl small grace", Options{Name: "x", TTL: 3 * time.Second, Grace: 500 * time.Millisecond}, true},
		{"sub-second ttl", Options{Name: "x", TTL: 500 * time.Millisecond}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.opts.Check(); (err == nil) != tc.ok {
				t.Fatalf("Check() = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestUnsafeServer(t *testing.T) {
	for v, unsafe := range map[string]bool{
		"3.4.30": true, "3.4.31": false, "3.5.12": true, "3.5.13": false, "3.5.20": false,
		"3.6.0": false, "3.7.3": false, "3.3.27": true, "2.3.8": true, "garbage": false,
	} {
		if got := UnsafeServer(v) != ""; got != unsafe {
			t.Errorf("UnsafeServer(%q) = %v, want %v", v, got, unsafe)
		}
	}
	cli := newClient(t, endpoint)
	v, err := ServerVersion(ctxT(t, 5*time.Second), cli, endpoint)
	if err != nil || !strings.HasPrefix(v, "3.7.") || UnsafeServer(v) != "" {
		t.Fatalf("embedded server: %q %v", v, err)
	}
}
