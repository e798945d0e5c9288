package tests

// --notify job: the job gets a private NOTIFY_SOCKET and guard, the main
// PID, relays what it says to systemd (a real unixgram socket here).

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/guardtest"
)

// sdJobScript is a notify-aware job: it writes its environment to argv[1],
// then acts on the steps that follow: send:TEXT (\n for a newline), sleep:S,
// onhup:TEXT (send TEXT on each SIGHUP), onterm:TEXT (send TEXT on SIGTERM,
// then exit 0), ontermstay:TEXT (send TEXT on SIGTERM, and go on), wait:FILE, flood (send STATUS= datagrams without end),
// exit:N, forever.
const sdJobScript = `
import os, signal, socket, sys, time
sock = os.environ.get("NOTIFY_SOCKET", "")
out = sys.argv[1]
with open(out + ".tmp", "w") as f:
    f.write("sock=%s\nwdpid=%s\nwdusec=%s\n" % (sock, os.environ.get("WATCHDOG_PID", ""), os.environ.get("WATCHDOG_USEC", "")))
os.rename(out + ".tmp", out)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(sock)
def send(text):
    s.send(text.replace("\\n", "\n").encode())
def on(sig, text, then_exit):
    def handler(*_):
        send(text)
        if then_exit:
            os._exit(0)
    signal.signal(sig, handler)
for step in sys.argv[2:]:
    verb, _, arg = step.partition(":")
    if verb == "send":
        send(arg)
    elif verb == "sleep":
        time.sleep(float(arg))
    elif verb == "onhup":
        on(signal.SIGHUP, arg, False)
    elif verb == "onterm":
        on(signal.SIGTERM, arg, True)
    elif verb == "ontermstay":
        on(signal.SIGTERM, arg, False)
    elif verb == "wait":
        while not os.path.exists(arg):
            time.sleep(0.01)
    elif verb == "flood":
        i = 0
        while True:
            i += 1
            send("STATUS=flood %d" % i)
    elif verb == "exit":
        sys.exit(int(arg))
    elif verb == "forever":
        while True:
            time.sleep(3600)
`

// sdJob returns the command line of a notify-aware job and the file where
// it writes its environment.
func sdJob(t *testing.T, steps ...string) (argv []string, envFile string) {
	t.Helper()
	py := guardtest.RequirePeer(t, "python3", "python3")
	dir := t.TempDir()
	script := filepath.Join(dir, "sdjob.py")
	if err := os.WriteFile(script, []byte(sdJobScript), 0o644); err != nil {
		t.Fatal(err)
	}
	envFile = filepath.Join(dir, "env")
	return append([]string{py, "-u", script, envFile}, steps...), envFile
}

// jobEnv waits for the job's environment and returns it as a map.
func jobEnv(t *testing.T, envFile string) map[string]string {
	t.Helper()
	guardtest.Eventually(t, "the job's environment", func() bool { _, err := os.Stat(envFile); return err == nil })
	b, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		m[k] = v
	}
	return m
}

// The job's own READY=1, STATUS= and WATCHDOG=1 reach systemd through guard;
// MAINPID= and FDSTORE= do not; guard says READY=1 for nobody, sends
// RELOADING=1 before a SIGHUP reaches the job and lets the job's READY=1 end
// the reload; once the job pings the watchdog, guard stops its own pings.
func TestNotifyRelay(t *testing.T) {
	s := newSDSocket(t)
	lock := filepath.Join(lockDir(t), "job.lock")
	argv, envFile := sdJob(t, "onhup:READY=1", "send:STATUS=starting", "sleep:0.3",
		`send:MAINPID=1\nREADY=1\nFDSTORE=1\nSTATUS=ready`, "sleep:0.5", `send:WATCHDOG=1\nSTATUS=job ping`, "forever")
	env := append(sdEnv(s), "WATCHDOG_USEC=300000")
	p := startEnv(t, env, guardBin, append([]string{"run", "--notify", "job", "--lock", lock, "--"}, argv...)...)
	e := jobEnv(t, envFile)
	if e["sock"] == "" || e["sock"] == s.path {
		t.Fatalf("the job's NOTIFY_SOCKET is %q, want a private one", e["sock"])
	}
	if e["wdpid"] != "" || e["wdusec"] != "300000" {
		t.Errorf("the job's WATCHDOG_PID=%q WATCHDOG_USEC=%q, want unset and 300000", e["wdpid"], e["wdusec"])
	}
	fi, err := os.Stat(filepath.Dir(e["sock"]))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the relay's directory: %v, mode %v; want 0700", err, fi.Mode())
	}
	at := s.expectInOrder(t, `^STATUS=starting$`, `^READY=1\nSTATUS=ready$`, `^WATCHDOG=1\nSTATUS=job ping$`)
	if got := s.all(); index(got, 0, reRunning) < 0 || strings.Contains(strings.Join(got[:at[1]], "\n"), "READY=1") {
		t.Fatalf("before the job's READY=1: %q; want guard's STATUS=running and no READY=1", got[:at[1]])
	}
	// Guard's own pings until the job's first one; none after it.
	if got := s.all(); index(got, 0, reBarePing) < 0 || index(got, at[1], reBarePing) > at[2] {
		t.Fatalf("guard's WATCHDOG=1 pings: %q", got)
	}
	time.Sleep(time.Second) // more than three of guard's ping periods
	if got := s.all(); index(got, at[2], reBarePing) >= 0 {
		t.Fatalf("guard still pings after the job took the watchdog over: %q", got[at[2]:])
	}

	p.cmd.Process.Signal(syscall.SIGHUP)
	rl := s.expectInOrder(t, `^WATCHDOG=1\nSTATUS=job ping$`, `^RELOADING=1\nMONOTONIC_USEC=[0-9]+$`, `^READY=1$`)
	if got := s.all(); strings.Count(strings.Join(got[:rl[2]+1], "\n"), "READY=1") != 2 {
		t.Fatalf("READY=1 not only the job's two: %q", got)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t)
	if !strings.Contains(p.stderr.String(), `"MAINPID"`) || !strings.Contains(p.stderr.String(), `"FDSTORE"`) {
		t.Errorf("guard did not say it dropped MAINPID= and FDSTORE=: %s", p.stderr)
	}
	for _, d := range s.settle(t) {
		if strings.Contains(d, "MAINPID") || strings.Contains(d, "FDSTORE") {
			t.Fatalf("relayed %q", d)
		}
	}
	if _, err := os.Stat(filepath.Dir(e["sock"])); !os.IsNotExist(err) {
		t.Errorf("the relay's directory outlived the run: %v", err)
	}
}

var (
	reRunning  = regexp.MustCompile(`^STATUS=running job PID [0-9]+, token [0-9]+$`)
	reBarePing = regexp.MustCompile(`^WATCHDOG=1$`)
)

// A shell job's systemd-notify(1), a process that exits right after
// sending, is relayed.
func TestNotifyRelaySystemdNotify(t *testing.T) {
	sn := guardtest.RequirePeer(t, "systemd-notify", "systemd")
	s := newSDSocket(t)
	lock := filepath.Join(lockDir(t), "job.lock")
	p := startEnv(t, sdEnv(s), guardBin, "run", "--notify", "job", "--lock", lock, "--",
		"sh", "-c", sn+" --ready --status=from-sh; exec sleep 1000")
	guardtest.Eventually(t, "systemd-notify's message", func() bool {
		for _, d := range s.all() {
			if strings.Contains(d, "READY=1") && strings.Contains(d, "STATUS=from-sh") {
				return true
			}
		}
		return false
	})
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t)
}

// Nobody but the job speaks through the relay: another user cannot reach
// the socket, and a process of guard's own user that is not of the job's
// tree is refused (SCM_CREDENTIALS).
func TestNotifyRelayRefusesOutsiders(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to try the socket as another user")
	}
	s := newSDSocket(t)
	dir := lockDir(t)
	lock, trigger := filepath.Join(dir, "job.lock"), filepath.Join(dir, "go")
	argv, envFile := sdJob(t, "send:STATUS=up", "wait:"+trigger, "send:STATUS=marker", "forever")
	p := startEnv(t, sdEnv(s), guardBin, append([]string{"run", "--notify", "job", "--lock", lock, "--"}, argv...)...)
	sock := jobEnv(t, envFile)["sock"]
	s.expectInOrder(t, `^STATUS=up$`)

	// Another user: the directory (0700) keeps them out.
	sn := guardtest.RequirePeer(t, "systemd-notify", "systemd")
	other := exec.Command(sn, "--status=from nobody")
	other.Dir, other.Env = "/", []string{"NOTIFY_SOCKET=" + sock}
	other.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := other.CombinedOutput(); err == nil || !strings.Contains(string(out), "ermission denied") {
		t.Errorf("user nobody reached the relay: %v %s", err, out)
	}
	// This test process: root, alive, not a descendant of guard.
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("READY=1\nSTATUS=injected")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := os.WriteFile(trigger, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.expectInOrder(t, `^STATUS=up$`, `^STATUS=marker$`)
	for _, d := range s.all() {
		if strings.Contains(d, "injected") || strings.Contains(d, "nobody") || strings.Contains(d, "READY=1") {
			t.Fatalf("relayed a datagram from outside the job: %q", s.all())
		}
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t)
}

// A job that floods its socket does not keep guard from its duties: a
// reload and a stop still go through, in order, while the flood goes on.
func TestNotifyRelayFlood(t *testing.T) {
	s := newSDSocket(t)
	lock := filepath.Join(lockDir(t), "job.lock")
	argv, _ := sdJob(t, "flood")
	p := startEnv(t, sdEnv(s), guardBin, append([]string{"run", "--notify", "job", "--lock", lock, "--"}, argv...)...)
	s.expectInOrder(t, `^STATUS=flood [0-9]+$`)
	p.cmd.Process.Signal(syscall.SIGHUP) // python's default: the job dies of it
	s.expectInOrder(t, `^STATUS=flood`, `^RELOADING=1\nMONOTONIC_USEC=`, `^STATUS=job PID [0-9]+ ended \(killed by signal 1 `)
	if code := p.wait(t); code != 128+1 {
		t.Fatalf("exit %d, want 129: %s", code, p.stderr)
	}
}

// systemd that stops reading (its socket full) while the job floods: guard
// still stops the job and exits; no send blocks it for long.
func TestNotifyRelayFloodSystemdStalled(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close() // never read
	lock := filepath.Join(lockDir(t), "job.lock")
	argv, envFile := sdJob(t, "flood")
	p := startEnv(t, []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=", "WATCHDOG_PID="}, guardBin,
		append([]string{"run", "--notify", "job", "--lock", lock, "--"}, argv...)...)
	jobEnv(t, envFile)
	time.Sleep(500 * time.Millisecond) // let the flood fill systemd's socket
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != 128+15 {
		t.Fatalf("exit %d, want 143: %s", code, p.stderr)
	}
	if held(t, lock) {
		t.Fatal("the lock is still held")
	}
}

// A job that says READY=1 and dies: systemd heard READY=1 from the job
// only, then the end; guard exits with the job's status.
func TestNotifyRelayReadyThenDies(t *testing.T) {
	s := newSDSocket(t)
	lock := filepath.Join(lockDir(t), "job.lock")
	argv, _ := sdJob(t, "send:READY=1", "exit:3")
	p := startEnv(t, sdEnv(s), guardBin, append([]string{"run", "--notify", "job", "--lock", lock, "--"}, argv...)...)
	if code := p.wait(t); code != 3 {
		t.Fatalf("exit %d, want 3: %s", code, p.stderr)
	}
	got := s.settle(t)
	at := index(got, 0, regexp.MustCompile(`^READY=1$`))
	end := index(got, 0, regexp.MustCompile(`^STATUS=job PID [0-9]+ ended \(exit code 3\)`))
	if at < 0 || end < at || strings.Count(strings.Join(got, "\n"), "READY=1") != 1 {
		t.Fatalf("datagrams %q; want the job's READY=1 once, then the end", got)
	}
}

// The job's READY=1 is not relayed once guard has lost the lock.
func TestNotifyRelayNoReadyWithoutLock(t *testing.T) {
	flock := guardtest.RequirePeer(t, "flock", "util-linux")
	s := newSDSocket(t)
	lock := filepath.Join(lockDir(t), "job.lock")
	// The job answers guard's SIGTERM with READY=1 and stays until the
	// SIGKILL: guard reads (and refuses) the READY=1 while it still runs.
	argv, _ := sdJob(t, "ontermstay:READY=1\\nSTATUS=job says ready", "send:STATUS=up", "forever")
	p := startEnv(t, sdEnv(s), guardBin, append([]string{"run", "--notify", "job", "--kill-after", "2s", "--lock", lock, "--"}, argv...)...)
	s.expectInOrder(t, `^STATUS=up$`)
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	start(t, flock, "-n", lock, "sleep", "1000")
	if code := p.wait(t); code != 69 {
		t.Fatalf("exit %d, want 69: %s", code, p.stderr)
	}
	got := s.settle(t)
	if index(got, 0, regexp.MustCompile(`^STATUS=lost the lock`)) < 0 {
		t.Fatalf("no STATUS= about the lost lock: %q", got)
	}
	if strings.Contains(strings.Join(got, "\n"), "READY=1") {
		t.Fatalf("relayed READY=1 without the lock: %q", got)
	}
	if !strings.Contains(p.stderr.String(), "READY=1 (PID") {
		t.Errorf("guard did not log the dropped READY=1: %s", p.stderr)
	}
}
