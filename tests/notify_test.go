package tests

// guard run under systemd, as systemd hears it: a real unixgram socket as
// NOTIFY_SOCKET, the datagrams read in the order guard sent them.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/internal/guardtest"
)

// sdSocket is a fake systemd: a unixgram socket whose datagrams are
// collected in order.
type sdSocket struct {
	path string
	conn *net.UnixConn
	mu   sync.Mutex
	got  []string
}

func newSDSocket(t *testing.T) *sdSocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	s := &sdSocket{path: path, conn: conn}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 8192)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.got = append(s.got, string(buf[:n]))
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return s
}

// all returns every datagram read so far.
func (s *sdSocket) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// settle returns every datagram sent before the call: it sends a marker of
// its own and waits until the marker was read (a socket is FIFO).
func (s *sdSocket) settle(t *testing.T) []string {
	t.Helper()
	marker := fmt.Sprintf("TEST_MARKER=%d", time.Now().UnixNano())
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(marker)); err != nil {
		t.Fatal(err)
	}
	var got []string
	guardtest.Eventually(t, "the marker datagram", func() bool {
		got = s.all()
		return len(got) > 0 && got[len(got)-1] == marker
	})
	return got[:len(got)-1]
}

// index returns the position of the first datagram at or after from that
// matches re, or -1.
func index(got []string, from int, re *regexp.Regexp) int {
	for i := from; i < len(got); i++ {
		if re.MatchString(got[i]) {
			return i
		}
	}
	return -1
}

// expectInOrder waits until datagrams matching each pattern arrived, in this
// order (others may come between), and returns their positions.
func (s *sdSocket) expectInOrder(t *testing.T, patterns ...string) []int {
	t.Helper()
	var at []int
	guardtest.Eventually(t, fmt.Sprintf("datagrams %q in order", patterns), func() bool {
		got := s.all()
		at = at[:0]
		from := 0
		for _, p := range patterns {
			i := index(got, from, regexp.MustCompile(p))
			if i < 0 {
				return false
			}
			at = append(at, i)
			from = i + 1
		}
		return true
	})
	return at
}

// sdEnv is the environment systemd gives a Type=notify service, without a
// watchdog; WATCHDOG_* from the test's own environment are cleared.
func sdEnv(s *sdSocket) []string {
	return []string{"NOTIFY_SOCKET=" + s.path, "WATCHDOG_USEC=", "WATCHDOG_PID=", "JOURNAL_STREAM="}
}

func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

// --notify guard (the default), as a Type=notify unit hears it: READY=1 once
// the job runs, with its PID and token; RELOADING=1 with MONOTONIC_USEC and
// READY=1 around a SIGHUP forwarded to the job; STOPPING=1 with a stop
// timeout extended to --kill-after on SIGTERM; the job never sees the socket.
func TestNotifyGuardSequence(t *testing.T) {
	s := newSDSocket(t)
	dir := lockDir(t)
	lock, envf := filepath.Join(dir, "job.lock"), filepath.Join(dir, "env")
	p := startEnv(t, sdEnv(s), guardBin, "run", "--lock", lock, "--kill-after", "7s", "--",
		"sh", "-c", fmt.Sprintf(`echo "sock=$NOTIFY_SOCKET." > %s; trap '' HUP; exec sleep 1000`, envf))
	at := s.expectInOrder(t, `^READY=1\nSTATUS=running job PID [0-9]+, token [0-9]+$`)
	ready := s.all()[at[0]]
	guardtest.Eventually(t, "the job's environment", func() bool { return fileHas(envf, "\n") })
	if !fileHas(envf, "sock=.") {
		b, _ := os.ReadFile(envf)
		t.Errorf("--notify guard: the job sees systemd's socket: %q", b)
	}
	rec := guard(t, "status", "--json", "--lock", lock).stdout
	if m := regexp.MustCompile(`token ([0-9]+)`).FindStringSubmatch(ready); m == nil || !strings.Contains(rec, m[1]) {
		t.Errorf("READY's token is not the record's: %q vs %s", ready, rec)
	}

	before := monotonicUsec(t)
	p.cmd.Process.Signal(syscall.SIGHUP)
	at = s.expectInOrder(t, `^READY=1\nSTATUS=running`, `^RELOADING=1\nMONOTONIC_USEC=[0-9]+$`, `^READY=1$`)
	got := s.all()
	usec, _ := strconv.ParseInt(strings.TrimPrefix(strings.Split(got[at[1]], "\n")[1], "MONOTONIC_USEC="), 10, 64)
	if after := monotonicUsec(t); usec < before || usec > after {
		t.Errorf("MONOTONIC_USEC=%d outside [%d, %d], when the SIGHUP came", usec, before, after)
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	s.expectInOrder(t, `^RELOADING=1`, `^READY=1$`,
		`^STOPPING=1\nSTATUS=stopping: SIGTERM\nEXTEND_TIMEOUT_USEC=12000000$`,
		`^STATUS=job PID [0-9]+ ended \(killed by signal 15`)
	if code := p.wait(t); code != 128+15 {
		t.Fatalf("exit %d, want 143: %s", code, p.stderr)
	}
	got = s.settle(t)
	if n := strings.Count(strings.Join(got, "\n"), "READY=1"); n != 2 {
		t.Errorf("READY=1 sent %d times, want 2 (start, reload): %q", n, got)
	}
}

// A job that cannot be started never makes systemd think the unit is
// ready, in any mode, nor when its PID namespace's init is what fails to
// start it (root only).
func TestNotifyNoReadyWhenExecFails(t *testing.T) {
	for _, flags := range [][]string{{"--notify", "guard"}, {"--notify", "job"}, {"--pid-namespace"}} {
		t.Run(strings.Join(flags, " "), func(t *testing.T) {
			if flags[0] == "--pid-namespace" && os.Geteuid() != 0 {
				t.Skip("--pid-namespace needs root")
			}
			s := newSDSocket(t)
			lock := filepath.Join(lockDir(t), "job.lock")
			args := append(append([]string{"run"}, flags...), "--lock", lock, "--", filepath.Join(lockDir(t), "missing"))
			p := startEnv(t, sdEnv(s), guardBin, args...)
			if code := p.wait(t); code != 127 {
				t.Fatalf("exit %d, want 127: %s", code, p.stderr)
			}
			if got := s.settle(t); strings.Contains(strings.Join(got, "\n"), "READY=1") {
				t.Fatalf("READY=1 for a job that never started: %q", got)
			}
		})
	}
}

// holdLock starts the test holder on lock and returns it once it holds it.
func holdLock(t *testing.T, lock string) *proc {
	t.Helper()
	h := start(t, holderBin, lock)
	guardtest.Eventually(t, "the holder to lock", func() bool { return strings.Contains(h.stderr.String(), "locked") })
	return h
}

// A hot standby (--wait forever) is started as far as systemd is concerned
// (READY=1 at once, STATUS= says whom it waits for), answers a SIGHUP with
// RELOADING=1 and READY=1 (notify-reload units would otherwise fail), and
// reports the job once it takes over.
func TestNotifyStandby(t *testing.T) {
	s := newSDSocket(t)
	dir := lockDir(t)
	lock := filepath.Join(dir, "job.lock")
	h := holdLock(t, lock)
	p := startEnv(t, sdEnv(s), guardBin, "run", "--lock", lock, "--wait", "forever", "--", "sleep", "1000")
	s.expectInOrder(t, fmt.Sprintf(`^READY=1\nSTATUS=standby: waiting for %s, held by PID %d`, regexp.QuoteMeta(lock), h.cmd.Process.Pid))
	p.cmd.Process.Signal(syscall.SIGHUP)
	s.expectInOrder(t, `^READY=1\nSTATUS=standby`, `^RELOADING=1\nMONOTONIC_USEC=[0-9]+$`, `^READY=1\nSTATUS=standby: still waiting`)
	if got := s.all(); strings.Contains(strings.Join(got, "\n"), "running job") {
		t.Fatalf("the standby reported a job while the lock was held elsewhere: %q", got)
	}
	h.cmd.Process.Kill()
	s.expectInOrder(t, `^READY=1\nSTATUS=standby`, `^READY=1\nSTATUS=running job PID [0-9]+, token [0-9]+$`)
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t)
}

// A bounded --wait extends the start timeout by the wait (and a margin) and
// says READY=1 only once the job runs.
func TestNotifyBoundedWait(t *testing.T) {
	s := newSDSocket(t)
	lock := filepath.Join(lockDir(t), "job.lock")
	h := holdLock(t, lock)
	p := startEnv(t, sdEnv(s), guardBin, "run", "--lock", lock, "--wait", "2m", "--", "sleep", "1000")
	s.expectInOrder(t, `^EXTEND_TIMEOUT_USEC=125000000\nSTATUS=waiting up to 2m0s for .*held by PID`)
	if got := s.settle(t); strings.Contains(strings.Join(got, "\n"), "READY=1") {
		t.Fatalf("READY=1 while waiting for the lock: %q", got)
	}
	h.cmd.Process.Kill()
	s.expectInOrder(t, `^EXTEND_TIMEOUT_USEC=`, `^READY=1\nSTATUS=running job PID`)
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t)
}

// --jitter under systemd: the sleep extends the start timeout and the
// watchdog keeps pinging through it (a long jitter would otherwise get guard
// killed), then READY=1 once the job runs. The jitter's upper bound is long
// and the sleep random, so the test sees the sleep and the pings, then ends
// guard with SIGTERM (exit 143, the job never ran).
func TestNotifyJitter(t *testing.T) {
	s := newSDSocket(t)
	ran := filepath.Join(t.TempDir(), "ran")
	env := append(sdEnv(s), "WATCHDOG_USEC=300000")
	p, _ := healthGuardEnv(t, env, "--lock", filepath.Join(lockDir(t), "job.lock"), "--jitter", "1000h", "--", "touch", ran)
	s.expectInOrder(t, `^EXTEND_TIMEOUT_USEC=[0-9]+\nSTATUS=--jitter: sleeping `, `^WATCHDOG=1$`, `^WATCHDOG=1$`, `^WATCHDOG=1$`)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != 143 {
		t.Fatalf("exit %d: %s", code, p.stderr)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Error("the job ran")
	}
}

// WATCHDOG=1 at half WATCHDOG_USEC while the job runs with the lock; once
// the lock is lost (the file replaced and locked by flock(1)), no more
// pings, though guard is still busy stopping a job that ignores SIGTERM.
func TestNotifyWatchdogStopsWithTheLock(t *testing.T) {
	flock := guardtest.RequirePeer(t, "flock", "util-linux")
	s := newSDSocket(t)
	dir := lockDir(t)
	lock := filepath.Join(dir, "job.lock")
	env := append(sdEnv(s), "WATCHDOG_USEC=300000")
	p := startEnv(t, env, guardBin, "run", "--lock", lock, "--kill-after", "3s", "--",
		"sh", "-c", `trap '' TERM; exec sleep 1000`)
	s.expectInOrder(t, `^READY=1`, `^WATCHDOG=1$`, `^WATCHDOG=1$`, `^WATCHDOG=1$`)
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	start(t, flock, "-n", lock, "sleep", "1000")
	at := s.expectInOrder(t, `^STATUS=lost the lock`)
	if code := p.wait(t); code != 69 {
		t.Fatalf("exit %d, want 69: %s", code, p.stderr)
	}
	got := s.settle(t)
	for _, d := range got[at[0]:] {
		if d == "WATCHDOG=1" {
			t.Fatalf("WATCHDOG=1 after the lock was lost: %q", got[at[0]:])
		}
	}
	if n := strings.Count(strings.Join(got[at[0]:], "\n"), "READY=1"); n != 0 {
		t.Fatalf("READY=1 after the lock was lost: %q", got[at[0]:])
	}
}

// A watchdog meant for another process (WATCHDOG_PID not guard's) is not
// guard's to feed.
func TestNotifyWatchdogOfAnotherPID(t *testing.T) {
	s := newSDSocket(t)
	lock := filepath.Join(lockDir(t), "job.lock")
	env := append(sdEnv(s), "WATCHDOG_USEC=100000", "WATCHDOG_PID=1")
	p := startEnv(t, env, guardBin, "run", "--lock", lock, "--", "sleep", "1")
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit %d: %s", code, p.stderr)
	}
	if got := s.settle(t); strings.Contains(strings.Join(got, "\n"), "WATCHDOG=1") {
		t.Fatalf("pinged a watchdog for PID 1: %q", got)
	}
}

// --notify none: guard says nothing, and the job keeps systemd's variables.
func TestNotifyNone(t *testing.T) {
	s := newSDSocket(t)
	dir := lockDir(t)
	lock, envf := filepath.Join(dir, "job.lock"), filepath.Join(dir, "env")
	p := startEnv(t, append(sdEnv(s), "WATCHDOG_USEC=100000"), guardBin, "run", "--notify", "none", "--lock", lock, "--",
		"sh", "-c", fmt.Sprintf(`echo "sock=$NOTIFY_SOCKET wd=$WATCHDOG_USEC" > %s; sleep 0.5`, envf))
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit %d: %s", code, p.stderr)
	}
	if got := s.settle(t); len(got) != 0 {
		t.Fatalf("--notify none sent %q", got)
	}
	if want := "sock=" + s.path + " wd=100000"; !fileHas(envf, want) {
		b, _ := os.ReadFile(envf)
		t.Fatalf("job's environment %q, want %q", b, want)
	}
}

// Bad values for the new flags are one-line usage errors; parse-only mode
// accepts the good ones.
func TestNotifyFlags(t *testing.T) {
	lock := filepath.Join(lockDir(t), "job.lock")
	for _, args := range [][]string{
		{"--notify", "bogus"}, {"--log-format", "xml"}, {"--notify="}, {"--log-format"},
	} {
		r := guard(t, append(append([]string{"run", "--lock", lock}, args...), "--", "true")...)
		if r.code != 64 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.HasPrefix(r.stderr, "guard: ") {
			t.Errorf("%v: exit %d, stderr %q; want 64 and one line", args, r.code, r.stderr)
		}
	}
	for _, mode := range []string{"guard", "job", "none"} {
		for _, f := range []string{"text", "json"} {
			cmd := exec.Command(guardBin, "run", "--lock", lock, "--notify", mode, "--log-format", f, "--", "false")
			cmd.Env = append(os.Environ(), "GUARD_PARSE_ONLY=1")
			if out, err := cmd.CombinedOutput(); err != nil || len(out) != 0 {
				t.Errorf("GUARD_PARSE_ONLY=1 --notify %s --log-format %s: %v %q", mode, f, err, out)
			}
		}
	}
}
