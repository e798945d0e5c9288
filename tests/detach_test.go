package tests

import (
	"bytes"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/guardtest"
)

// procFacts reads what the detach tests check about a process from /proc.
type procFacts struct {
	pid, sid, tty int
	cwd           string
	fds           map[int]string
}

func factsOf(t *testing.T, pid int) procFacts {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	sid, _ := strconv.Atoi(f[3])
	tty, _ := strconv.Atoi(f[4])
	cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	fds := map[int]string{}
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, e := range ents {
		n, _ := strconv.Atoi(e.Name())
		fds[n], _ = os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
	}
	return procFacts{pid: pid, sid: sid, tty: tty, cwd: cwd, fds: fds}
}

// Start detached from inside a pseudo-terminal with an extra descriptor
// open: guard's daemon and its job have no controlling terminal, the daemon
// is not a session leader, cwd is /, 0-2 are /dev/null or the output file,
// nothing else leaked; closing the terminal sends the job no SIGHUP.
func TestDetachFromTerminal(t *testing.T) {
	script := guardtest.RequirePeer(t, "script", "bsdutils")
	dir := lockDir(t)
	lock, out, jobpid, hups := filepath.Join(dir, "d.lock"), filepath.Join(dir, "out"), filepath.Join(dir, "jobpid"), filepath.Join(dir, "hups")
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, nil, 0o600)
	job := fmt.Sprintf(`trap "echo hup >> %s" HUP; echo $$ > %s; echo job-output; while :; do sleep 0.05; done`, hups, jobpid)
	cmdline := fmt.Sprintf("exec 7<%s; %s run --detach --output %s --lock %s -- sh -c '%s'", secret, guardBin, out, lock, job)
	r := run(t, script, "-qec", cmdline, "/dev/null")
	if r.code != 0 {
		t.Fatalf("detached start: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	// Ready means the job runs: its PID file is there at once, and the lock is held.
	st := guard(t, "status", "--lock", lock, "--json")
	if st.code != 0 {
		t.Fatalf("status right after the starter returned: %d %s", st.code, st.stdout)
	}
	guardtest.Eventually(t, "job pid", func() bool { return fileHas(jobpid, "\n") })
	dpid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(readFile(lock), "\n", 2)[0]))
	jp, _ := strconv.Atoi(strings.TrimSpace(readFile(jobpid)))
	t.Cleanup(func() { guard(t, "stop", "--lock", lock) })
	d := factsOf(t, dpid)
	if d.tty != 0 || d.sid == dpid || d.cwd != "/" {
		t.Errorf("daemon: tty %d, sid %d (pid %d), cwd %q: want no tty, not a session leader, cwd /", d.tty, d.sid, dpid, d.cwd)
	}
	if comm := strings.TrimSpace(readFile(fmt.Sprintf("/proc/%d/comm", dpid))); comm != filepath.Base(guardBin) {
		t.Errorf("daemon is named %q, want %q (ps -C, pgrep)", comm, filepath.Base(guardBin))
	}
	if d.fds[0] != "/dev/null" || d.fds[1] != out || d.fds[2] != out {
		t.Errorf("daemon stdio: %v", d.fds)
	}
	for fd, target := range d.fds {
		if target == secret || strings.Contains(target, "pts") || strings.Contains(target, "ptmx") {
			t.Errorf("daemon leaked fd %d -> %s", fd, target)
		}
	}
	j := factsOf(t, jp)
	if j.tty != 0 {
		t.Errorf("job has a controlling terminal (tty %d)", j.tty)
	}
	for fd, target := range j.fds {
		if target == secret {
			t.Errorf("job inherited the caller's fd %d", fd)
		}
	}
	// The terminal script(1) made is closed by now: no SIGHUP reached the job.
	time.Sleep(200 * time.Millisecond)
	if exists(hups) {
		t.Error("the job got SIGHUP when the terminal closed")
	}
	if !fileHas(out, "job-output") {
		t.Errorf("the job's output did not reach --output: %q", readFile(out))
	}
	if r := guard(t, "stop", "--lock", lock); r.code != 0 {
		t.Fatalf("stop: %d %s", r.code, r.stderr)
	}
	if alive(jp) || alive(dpid) {
		t.Error("daemon or job survived stop")
	}
}

func readFile(p string) string { b, _ := os.ReadFile(p); return string(b) }

// Detached start when the lock is busy or the program is missing: non-zero
// with the reason; the lock is free afterwards.
func TestDetachFailures(t *testing.T) {
	dir := lockDir(t)
	lock := filepath.Join(dir, "d.lock")
	h := startGuard(t, "run", "--lock", lock, "--", "sleep", "1000")
	guardtest.Eventually(t, "held", func() bool { return held(t, lock) })
	r := guard(t, "run", "--detach", "--lock", lock, "--", "true")
	if r.code != 75 || !strings.Contains(r.stderr, fmt.Sprintf("PID %d", h.cmd.Process.Pid)) {
		t.Fatalf("busy: %d %q, want 75 naming PID %d", r.code, r.stderr, h.cmd.Process.Pid)
	}
	other := filepath.Join(dir, "e.lock")
	for _, prog := range []string{filepath.Join(dir, "no-such-program"), "no-such-program-on-path"} {
		r = guard(t, "run", "--detach", "--lock", other, "--", prog)
		if r.code == 0 || !strings.Contains(r.stderr, "no-such-program") {
			t.Fatalf("missing %s: %d %q", prog, r.code, r.stderr)
		}
		if held(t, other) {
			t.Fatal("lock held after a failed detached start")
		}
	}
}

// --output syslog: the job's lines reach a syslog socket (a real unixgram
// listener standing in for /dev/log) as daemon-facility messages.
func TestDetachOutputSyslog(t *testing.T) {
	dir := lockDir(t)
	sock := filepath.Join(dir, "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	lock := filepath.Join(dir, "s.lock")
	cmd := osexec.Command(guardBin, "run", "--detach", "--output", "syslog", "--name", "nightly", "--lock", lock, "--",
		"sh", "-c", "echo line-one; echo line-two >&2")
	cmd.Env = append(os.Environ(), "GUARD_SYSLOG_SOCKET="+sock)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("detached start: %v %s", err, out)
	}
	got := map[string]string{}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 4096)
	for len(got) < 2 {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("syslog got %v, then %v", got, err)
		}
		m := string(buf[:n])
		for _, l := range []string{"line-one", "line-two"} {
			if strings.Contains(m, l) {
				got[l] = m
			}
		}
	}
	for l, m := range got {
		// Facility daemon (3), severity info (6): PRI 30; tagged with the job.
		if !strings.HasPrefix(m, "<30>") || !strings.Contains(m, " guard/nightly[") {
			t.Errorf("%s arrived as %q", l, m)
		}
	}
}

// guard run as PID 1 of a PID namespace (a container's entrypoint): orphans
// are reaped, SIGTERM reaches the job, the job's status is returned.
func TestRunAsPID1(t *testing.T) {
	unshare := guardtest.RequirePeer(t, "unshare", "util-linux")
	dir := lockDir(t)
	lock, ready := filepath.Join(dir, "p.lock"), filepath.Join(dir, "ready")
	// The job leaves orphans behind (their parent sh exits at once; they
	// touch a marker as they exit), then waits for SIGTERM and exits 42.
	o1, o2 := filepath.Join(dir, "o1"), filepath.Join(dir, "o2")
	job := fmt.Sprintf(`sh -c "(sleep 0.2; touch %s) & (sleep 0.3; touch %s) &"; trap "exit 42" TERM; touch %s; while :; do sleep 0.05; done`, o1, o2, ready)
	p := start(t, unshare, "--pid", "--fork", "--mount-proc", "--kill-child", guardBin, "run", "--lock", lock, "--", "sh", "-c", job)
	init := nsInit(t, p.cmd.Process.Pid)
	guardtest.Eventually(t, "job ready and orphans done", func() bool { return exists(ready) && exists(o1) && exists(o2) })
	// No child of guard, the namespace's PID 1, may stay a zombie.
	zombies := func() int {
		n := 0
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", init, init))
		for _, f := range strings.Fields(string(b)) {
			st, _ := os.ReadFile("/proc/" + f + "/stat")
			if i := bytes.LastIndexByte(st, ')'); i > 0 && len(st) > i+2 && st[i+2] == 'Z' {
				n++
			}
		}
		return n
	}
	guardtest.Eventually(t, "orphans reaped", func() bool { return zombies() == 0 })
	// A container runtime signals PID 1: guard forwards SIGTERM to the job.
	syscall.Kill(init, syscall.SIGTERM)
	if code := p.wait(t); code != 42 {
		t.Fatalf("exit %d, want the job's 42: %s", code, p.stderr.String())
	}
}

// nsInit returns the host PID of the child of unshare: the namespace's PID 1.
func nsInit(t *testing.T, unsharePID int) int {
	t.Helper()
	var child int
	guardtest.Eventually(t, "namespace init", func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", unsharePID, unsharePID))
		if err != nil {
			return false
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return false
		}
		child, _ = strconv.Atoi(f[0])
		return true
	})
	return child
}

// Under systemd (Type=notify), guard run says READY=1 once the job runs and
// STOPPING=1 when told to stop; tested against a real unixgram socket.
func TestRunNotifiesSystemd(t *testing.T) {
	dir := lockDir(t)
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cmd := osexec.Command(guardBin, "run", "--lock", filepath.Join(dir, "n.lock"), "--", "sleep", "1000")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	read := func() string {
		buf := make([]byte, 1024)
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
	// The first line of each datagram; STATUS= and the like follow it
	// (tests/notify_test.go checks them).
	if m := read(); !strings.HasPrefix(m, "READY=1\n") {
		t.Fatalf("first notification %q, want READY=1 first", m)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if m := read(); !strings.HasPrefix(m, "STOPPING=1\n") {
		t.Fatalf("after SIGTERM: %q, want STOPPING=1 first", m)
	}
	cmd.Wait()
}
