package daemon

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/internal/guardtest"
)

// Tests written against mutants of the relay and the watchdog that the
// other tests let live (the second mutation pass).

// accept relays only datagrams sent by this user or root: a descendant that
// runs as another user is refused, even one that is the relay's child.
func TestRelayAcceptRefusesAnotherUser(t *testing.T) {
	child := exec.Command("sleep", "1000")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	r := &Relay{self: os.Getpid()}
	pid := int32(child.Process.Pid)
	if !r.accept(&unix.Ucred{Pid: pid, Uid: uint32(os.Geteuid())}, []byte("READY=1"), 0) {
		t.Fatal("a child of this user refused (the test's premise)")
	}
	other := uint32(4242)
	if other == uint32(os.Geteuid()) {
		other++
	}
	if r.accept(&unix.Ucred{Pid: pid, Uid: other}, []byte("READY=1"), 0) {
		t.Fatalf("a datagram from UID %d (not this user, not root) accepted", other)
	}
	if r.accept(&unix.Ucred{Pid: pid, Uid: uint32(os.Geteuid())}, []byte("READY=1"), unix.MSG_TRUNC) {
		t.Fatal("a truncated datagram accepted")
	}
}

// A datagram longer than systemd's limit (4096 bytes) is refused whole, not
// relayed cut short; the next one, within the limit, passes.
func TestRelayRefusesAnOversizedDatagram(t *testing.T) {
	py := guardtest.RequirePeer(t, "python3", "python3")
	r, err := ListenRelay(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := make(chan RelayMessage, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, out) }()
	send := exec.Command(py, "-c", `import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"STATUS=" + b"x" * 5000, sys.argv[1])
s.sendto(b"STATUS=small", sys.argv[1])`, r.Path())
	if b, err := send.CombinedOutput(); err != nil {
		t.Fatalf("sender: %v %s", err, b)
	}
	select {
	case m := <-out:
		if m.State != "STATUS=small" {
			t.Fatalf("relayed %d bytes %.40q..., want only STATUS=small", len(m.State), m.State)
		}
	case <-time.After(waitFor):
		t.Fatal("nothing relayed")
	}
	if r.Refused() != 1 {
		t.Errorf("Refused = %d, want 1", r.Refused())
	}
	cancel()
	<-done
}

// Watchdog pings at half WATCHDOG_USEC, as sd_watchdog_enabled(3) advises:
// no gap between two pings comes near the timeout itself, at which systemd
// acts. (A ping at the full interval would race systemd's timer.)
func TestWatchdogGapsWellUnderTheTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("watches pings for 4s")
	}
	conn := fakeSystemd(t)
	const timeout = 1200 * time.Millisecond
	t.Setenv(WatchdogUsecEnv, strconv.FormatInt(timeout.Microseconds(), 10))
	t.Setenv(WatchdogPIDEnv, strconv.Itoa(os.Getpid()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Watchdog(ctx) }()
	var at []time.Time
	buf := make([]byte, 64)
	for window := time.Now().Add(4 * time.Second); time.Now().Before(window); {
		conn.SetReadDeadline(window)
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		if !strings.HasPrefix(string(buf[:n]), "WATCHDOG=1") {
			t.Fatalf("got %q", buf[:n])
		}
		at = append(at, time.Now())
	}
	cancel()
	<-done
	if len(at) < 3 {
		t.Fatalf("%d pings in 4s with WATCHDOG_USEC %v", len(at), timeout)
	}
	for i := 1; i < len(at); i++ {
		// Half the timeout is 600ms; 960ms leaves room for a loaded machine.
		if gap := at[i].Sub(at[i-1]); gap > timeout*4/5 {
			t.Fatalf("%v between pings %d and %d with WATCHDOG_USEC %v: want about half of it", gap, i-1, i, timeout)
		}
	}
}
