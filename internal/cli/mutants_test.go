package cli

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/instance"
)

// Tests written against mutants of this package that the other tests let
// live: each pins a promise of the contract that a small slip breaks.

// checkedLease is a lease whose Release runs check first, to see what the
// run has done by the time it lets the lock go.
type checkedLease struct {
	check    func()
	released bool
}

func (l *checkedLease) Token() uint64           { return 7 }
func (l *checkedLease) Record() instance.Record { return instance.Record{Token: 7} }
func (l *checkedLease) Since() time.Time        { return time.Now() }
func (l *checkedLease) Lost() <-chan struct{}   { return nil }
func (l *checkedLease) Err() error              { return nil }
func (l *checkedLease) Release() error {
	if !l.released {
		l.released = true
		l.check()
	}
	return nil
}

// newRun is a runner for script under le, reporting to a textfile in dir
// when dir is not empty.
func newRun(t *testing.T, le instance.Lease, dir string) *runner {
	t.Helper()
	obs, err := New(Config{}).newObserver("", dir, filepath.Join(t.TempDir(), "x.lock"), "x")
	if err != nil {
		t.Fatal(err)
	}
	o := &runOpts{killAfter: time.Minute, textfileDir: dir}
	o.c = obs.c
	o.sd = newNotifier(o.c, notifyGuard) // what begin makes; the lease is held
	o.sd.acquired()
	t.Cleanup(o.sd.close)
	return &runner{opts: o, lease: le, path: "/guard/x", name: "x", sigs: make(chan os.Signal), obs: obs}
}

// The run's outcome reaches the textfile after the lock is released, so
// that a slow textfile never delays the release (contract, promise 10); at
// the release, the textfile says at most that the job runs.
func TestTextfileWrittenAfterRelease(t *testing.T) {
	dir := t.TempDir()
	prom := filepath.Join(dir, "x.prom")
	var early bool
	le := &checkedLease{check: func() {
		b, _ := os.ReadFile(prom)
		early = strings.Contains(string(b), `result="success"} 1`)
	}}
	if err := newRun(t, le, dir).run([]string{"/bin/sh", "-c", "exit 0"}); err != nil {
		t.Fatal(err)
	}
	if !le.released {
		t.Fatal("the lease was not released")
	}
	if early {
		t.Fatal("the run's textfile was written before the lock was released")
	}
	if _, err := os.Stat(prom); err != nil {
		t.Fatalf("no textfile after the run: %v", err)
	}
}

// READY=1 goes to systemd only once the job has started: a job that cannot
// start never makes the unit active.
func TestReadyOnlyOnceTheJobStarted(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	received := func() string {
		// Every datagram was sent before run returned: none is on its
		// way, so a read that would block means there is no more.
		raw, err := conn.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var all []string
		buf := make([]byte, 4096)
		for more := true; more; {
			raw.Read(func(fd uintptr) bool {
				n, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
				if more = err == nil; more {
					all = append(all, string(buf[:n]))
				}
				return true
			})
		}
		return strings.Join(all, "\n")
	}
	le := &checkedLease{check: func() {}}
	err = newRun(t, le, "").run([]string{filepath.Join(t.TempDir(), "missing")})
	if code := codeOf(err); code != 127 {
		t.Fatalf("missing program: exit %d (%v), want 127", code, err)
	}
	if got := received(); strings.Contains(got, "READY=1") {
		t.Fatalf("systemd was told READY=1 for a job that never started: %q", got)
	}
	le = &checkedLease{check: func() {}}
	if err := newRun(t, le, "").run([]string{"/bin/sh", "-c", "exit 0"}); err != nil {
		t.Fatal(err)
	}
	if got := received(); !strings.Contains(got, "READY=1") {
		t.Fatalf("systemd heard %q from a run whose job started, want READY=1", got)
	}
}

// --pidfile is removed while the lock is still held, never after the
// release, when it may already be another run's (contract, promise 4).
func TestPidfileRemovedBeforeRelease(t *testing.T) {
	pf := filepath.Join(t.TempDir(), "guard.pid")
	var left bool
	le := &checkedLease{check: func() {
		_, err := os.Stat(pf)
		left = err == nil
	}}
	r := newRun(t, le, "")
	r.opts.pidfile = pf
	if err := r.run([]string{"/bin/sh", "-c", "test -s " + pf}); err != nil {
		t.Fatalf("the job did not see the PID file: %v", err)
	}
	if !le.released {
		t.Fatal("the lease was not released")
	}
	if left {
		t.Fatal("the PID file was still there when the lock was released")
	}
	if _, err := os.Stat(pf); err == nil {
		t.Fatal("the PID file outlived the run")
	}
}
