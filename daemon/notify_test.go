//go:build linux

package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeSystemd listens on a real unixgram socket standing in for systemd's notification
// socket and points $NOTIFY_SOCKET at it for the test.
func fakeSystemd(t *testing.T) *net.UnixConn {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv(NotifySocketEnv, sock)
	return conn
}

// readDatagram returns the next datagram, failing the test after waitFor.
func readDatagram(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(waitFor))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no datagram: %v", err)
	}
	return string(buf[:n])
}

func TestNotifyNotUnderSystemd(t *testing.T) {
	t.Setenv(NotifySocketEnv, "")
	for name, f := range map[string]func() (bool, error){
		"Ready": NotifyReady, "Reloading": Reloading, "Stopping": Stopping,
		"Status": func() (bool, error) { return Status("x") },
	} {
		if sent, err := f(); sent || err != nil {
			t.Errorf("%s without $NOTIFY_SOCKET = %v, %v; want false, nil", name, sent, err)
		}
	}
}

func TestNotifyMalformedSocket(t *testing.T) {
	for _, v := range []string{"relative/notify.sock", "vsock:2:1234"} {
		t.Setenv(NotifySocketEnv, v)
		if sent, err := Notify("READY=1"); sent || err == nil {
			t.Errorf("NOTIFY_SOCKET=%q: Notify = %v, %v; want false and an error", v, sent, err)
		}
	}
	t.Setenv(NotifySocketEnv, filepath.Join(t.TempDir(), "nobody-listens"))
	if sent, err := Notify("READY=1"); sent || err == nil {
		t.Errorf("socket without listener: Notify = %v, %v; want false and an error", sent, err)
	}
}

func TestNotifyAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@guard-daemon-test-%d-%d", time.Now().UnixNano(), len(t.Name()))
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Skipf("abstract unix sockets unavailable: %v", err)
	}
	defer conn.Close()
	t.Setenv(NotifySocketEnv, name)
	if sent, err := Status("line one\nline two"); !sent || err != nil {
		t.Fatalf("Status = %v, %v", sent, err)
	}
	if got, want := readDatagram(t, conn), "STATUS=line one line two"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestReloadingCarriesMonotonicTime(t *testing.T) {
	conn := fakeSystemd(t)
	before, _ := monotonicUsec()
	if sent, err := Reloading(); !sent || err != nil {
		t.Fatalf("Reloading = %v, %v", sent, err)
	}
	after, _ := monotonicUsec()
	m := regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=([0-9]+)$`).FindStringSubmatch(readDatagram(t, conn))
	if m == nil {
		t.Fatal("not one RELOADING=1 + MONOTONIC_USEC datagram")
	}
	if usec, _ := strconv.ParseInt(m[1], 10, 64); usec < before || usec > after {
		t.Errorf("MONOTONIC_USEC=%d outside [%d, %d]", usec, before, after)
	}
}

// TestControlNotifySequence drives a Control through start, a good reload, a failed
// reload and stop, and checks exactly what systemd hears.
func TestControlNotifySequence(t *testing.T) {
	conn := fakeSystemd(t)
	hup, stop := make(chan os.Signal), make(chan os.Signal)
	var fail atomic.Bool
	c := &Control{Reload: func(context.Context) error {
		if fail.Load() {
			return errors.New("bad\nconfig")
		}
		return nil
	}, Logger: discardLogger()}
	done := make(chan error, 1)
	go func() {
		done <- c.Run(context.Background(), &Signals{HUP: hup, Stop: stop}, func(ctx context.Context) error {
			c.Ready()
			<-ctx.Done()
			return nil
		})
	}()
	reloading := regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=[0-9]+$`)
	expect := func(step string, want any) {
		t.Helper()
		got := readDatagram(t, conn)
		if re, ok := want.(*regexp.Regexp); ok && !re.MatchString(got) || !ok && got != want {
			t.Fatalf("%s: got %q, want %v", step, got, want)
		}
	}
	expect("start", "READY=1")
	hup <- syscall.SIGHUP
	expect("reload", reloading)
	expect("reload done", "READY=1")
	fail.Store(true)
	hup <- syscall.SIGHUP
	expect("failed reload", reloading)
	expect("failed reload done", "READY=1\nSTATUS=reload failed: bad config")
	stop <- syscall.SIGTERM
	expect("stop", "STOPPING=1")
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if s := c.ReloadStats(); s.Total != 2 || s.Failed != 1 || s.LastSuccess.IsZero() {
		t.Errorf("ReloadStats = %+v, want 2 total, 1 failed, a last success", s)
	}
}
