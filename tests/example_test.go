package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
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

	"github.com/guardkit/guard/internal/guardtest"
)

// cmd/example, the worked example of a daemon built from the kit, driven as
// its users would: real signals through guard, real sockets and files.

var (
	exampleOnce sync.Once
	exampleBin  string
	exampleErr  error
)

// exampleBinary builds cmd/example once per test run, next to the guard
// binary TestMain built (and removes). $GUARD_TEST_EXAMPLE names a prebuilt one.
func exampleBinary(t *testing.T) string {
	t.Helper()
	exampleOnce.Do(func() {
		if exampleBin = os.Getenv("GUARD_TEST_EXAMPLE"); exampleBin != "" {
			return
		}
		dir := filepath.Dir(guardBin)
		if os.Getenv("GUARD_TEST_BIN") != "" { // not ours to write into
			if dir, exampleErr = os.MkdirTemp("", "guard-example-"); exampleErr != nil {
				return
			}
		}
		exampleBin = filepath.Join(dir, "example")
		if out, err := exec.Command("go", "build", "-o", exampleBin, "github.com/guardkit/guard/cmd/example").CombinedOutput(); err != nil {
			exampleErr = fmt.Errorf("build guard/cmd/example: %v\n%s", err, out)
		}
	})
	if exampleErr != nil {
		t.Fatal(exampleErr)
	}
	return exampleBin
}

var exampleAddrRE = regexp.MustCompile(`msg="serving health endpoints" addr=(\S+)`)

// exampleAddr waits until log() shows the address example bound for --listen.
func exampleAddr(t *testing.T, log func() string) string {
	t.Helper()
	var addr string
	guardtest.Eventually(t, "the health address in the log", func() bool {
		m := exampleAddrRE.FindStringSubmatch(log())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	return addr
}

// exampleProbe GETs path from a health server: the status code (0 if the request
// failed) and the body.
func exampleProbe(addr, path string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// exampleHealth is the part of /healthz the tests read.
type exampleHealth struct {
	Status string `json:"status"`
	Lock   struct {
		Held bool `json:"held"`
		PID  int  `json:"pid"`
	} `json:"lock"`
	Reloads struct {
		Total  uint64 `json:"total"`
		Failed uint64 `json:"failed"`
	} `json:"reloads"`
}

func exampleHealthz(t *testing.T, addr string) exampleHealth {
	t.Helper()
	code, body := exampleProbe(addr, "/healthz")
	var h exampleHealth
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatalf("/healthz: %d %q: %v", code, body, err)
	}
	return h
}

// exampleLogged counts the lines in log that log msg as their message.
func exampleLogged(log, msg string) int { return strings.Count(log, "msg="+strconv.Quote(msg)) }

// Foreground: ready with the lock, guard status/reload/stop work on it, a
// bad configuration is a failed reload that keeps the old one.
func TestExampleForeground(t *testing.T) {
	bin, dir := exampleBinary(t), lockDir(t)
	lock, conf := filepath.Join(dir, "ex.lock"), filepath.Join(dir, "ex.conf")
	writeExampleConfig(t, conf, "# first\nmessage = first message\ninterval = 50ms\n")
	p := start(t, bin, "--config", conf, "--lock", lock, "--listen", "127.0.0.1:0")
	pid, log := p.cmd.Process.Pid, p.stderr.String
	addr := exampleAddr(t, log)
	guardtest.Eventually(t, "/readyz 200", func() bool { c, _ := exampleProbe(addr, "/readyz"); return c == 200 })
	if h := exampleHealthz(t, addr); h.Status != "ok" || !h.Lock.Held || h.Lock.PID != pid {
		t.Fatalf("/healthz: %+v, want ok, held by PID %d", h, pid)
	}
	if r := guard(t, "status", "--lock", lock); r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("PID %d ", pid)) {
		t.Fatalf("status: %d %q, want 0 naming PID %d", r.code, r.stdout, pid)
	}
	guardtest.Eventually(t, "the message logged twice", func() bool { return exampleLogged(log(), "first message") >= 2 })

	writeExampleConfig(t, conf, "message = second message\ninterval = 50ms\n")
	if r := guard(t, "reload", "--lock", lock); r.code != 0 {
		t.Fatalf("reload: %d %q %q", r.code, r.stdout, r.stderr)
	}
	guardtest.Eventually(t, "the new message", func() bool { return exampleLogged(log(), "second message") > 0 })
	guardtest.Eventually(t, "reloads.total 1", func() bool { h := exampleHealthz(t, addr); return h.Reloads.Total == 1 && h.Reloads.Failed == 0 })

	writeExampleConfig(t, conf, "message = third message\ninterval = 0s\n")
	if r := guard(t, "reload", "--lock", lock); r.code != 0 {
		t.Fatalf("reload: %d %q %q", r.code, r.stdout, r.stderr)
	}
	guardtest.Eventually(t, "reloads.failed 1", func() bool { h := exampleHealthz(t, addr); return h.Reloads.Total == 2 && h.Reloads.Failed == 1 })
	n := exampleLogged(log(), "second message")
	guardtest.Eventually(t, "the old message to go on", func() bool { return exampleLogged(log(), "second message") >= n+2 })
	if exampleLogged(log(), "third message") != 0 || !strings.Contains(log(), "interval must be positive") {
		t.Fatalf("a failed reload took effect or was not logged:\n%s", log())
	}
	if c, body := exampleProbe(addr, "/readyz"); c != 200 {
		t.Fatalf("/readyz after a failed reload: %d %q", c, body)
	}

	if r := guard(t, "stop", "--lock", lock); r.code != 0 {
		t.Fatalf("stop: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("example exited %d after stop, want 0:\n%s", code, log())
	}
	if r := guard(t, "status", "--lock", lock); r.code != 3 {
		t.Fatalf("status after stop: %d %q, want 3 (released cleanly)", r.code, r.stdout)
	}
}

// A second instance exits 75 naming the holder, in the foreground and
// through the detaching starter.
func TestExampleBusy(t *testing.T) {
	bin, lock := exampleBinary(t), filepath.Join(lockDir(t), "ex.lock")
	first := start(t, bin, "--lock", lock)
	guardtest.Eventually(t, "the first instance to hold the lock", func() bool { return held(t, lock) })
	holder := fmt.Sprintf("PID %d ", first.cmd.Process.Pid)
	for _, args := range [][]string{{"--lock", lock}, {"--detach", "--lock", lock}} {
		r := run(t, bin, args...)
		if r.code != 75 || !strings.Contains(r.stderr, holder) {
			t.Errorf("example %v: exit %d %q, want 75 naming %q", args, r.code, r.stderr, holder)
		}
	}
	if first.exited() || !held(t, lock) {
		t.Fatalf("the first instance lost its lock:\n%s", first.stderr.String())
	}
}

// --detach returns 0 only once ready; the daemon has no terminal, is not a
// session leader, logs to --output, and guard stop stops it. Relative paths
// are resolved before the daemon changes to "/".
func TestExampleDetach(t *testing.T) {
	bin, dir := exampleBinary(t), lockDir(t)
	lock, out := filepath.Join(dir, "ex.lock"), filepath.Join(dir, "out.log")
	writeExampleConfig(t, filepath.Join(dir, "ex.conf"), "message = from the daemon\n")
	cmd := exec.Command(bin, "--detach", "--output", "out.log", "--lock", "ex.lock", "--config", "ex.conf", "--listen", "127.0.0.1:0")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("detached start: %v: %s", err, b)
	}
	// Ready before the starter returned: the address is logged, /readyz is 200.
	m := exampleAddrRE.FindStringSubmatch(readExampleLog(out))
	if m == nil {
		t.Fatalf("no health address in --output:\n%s", readExampleLog(out))
	}
	if c, body := exampleProbe(m[1], "/readyz"); c != 200 {
		t.Fatalf("/readyz right after the starter returned: %d %q", c, body)
	}
	pid := exampleHealthz(t, m[1]).Lock.PID
	if pid <= 1 {
		t.Fatalf("/healthz lock.pid %d", pid)
	}
	t.Cleanup(func() {
		if alive(pid) {
			guard(t, "stop", "--lock", lock)
			syscall.Kill(pid, syscall.SIGKILL) // only if stop failed; it is our daemon
		}
	})
	if sid, tty := exampleSession(t, pid); sid == pid || tty != 0 {
		t.Errorf("daemon %d: session %d, tty %d: want not a session leader, no controlling terminal", pid, sid, tty)
	}
	guardtest.Eventually(t, "the message in --output", func() bool { return exampleLogged(readExampleLog(out), "from the daemon") > 0 })
	if r := guard(t, "stop", "--lock", lock); r.code != 0 {
		t.Fatalf("stop: %d %q %q", r.code, r.stdout, r.stderr)
	}
	guardtest.Eventually(t, "the daemon to exit", func() bool { return !alive(pid) })
	if r := guard(t, "status", "--lock", lock); r.code != 3 {
		t.Fatalf("status after stop: %d %q, want 3", r.code, r.stdout)
	}
}

// Deleting the lock file under the holder: it exits non-zero and says why.
func TestExampleLostLock(t *testing.T) {
	bin, lock := exampleBinary(t), filepath.Join(lockDir(t), "ex.lock")
	p := start(t, bin, "--lock", lock, "--listen", "127.0.0.1:0")
	addr := exampleAddr(t, p.stderr.String)
	guardtest.Eventually(t, "/readyz 200", func() bool { c, _ := exampleProbe(addr, "/readyz"); return c == 200 })
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code == 0 || !strings.Contains(p.stderr.String(), "lost the lock") {
		t.Fatalf("after the lock file was deleted: exit %d, want non-zero, saying so:\n%s", code, p.stderr.String())
	}
}

// Under systemd (a real notification socket, as systemd makes one): READY=1
// once started, RELOADING=1 and READY=1 around a reload, WATCHDOG=1 pings,
// STOPPING=1 on SIGTERM.
func TestExampleSystemdNotify(t *testing.T) {
	bin, dir := exampleBinary(t), lockDir(t)
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var got syncBuffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			got.Write(append(buf[:n:n], '\n'))
		}
	}()
	has := func(s string, n int) func() bool { return func() bool { return strings.Count(got.String(), s) >= n } }

	cmd := exec.Command(bin, "--lock", filepath.Join(dir, "ex.lock"), "--detach") // stays in the foreground
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=200000")
	var log syncBuffer
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })

	guardtest.Eventually(t, "READY=1", has("READY=1", 1))
	guardtest.Eventually(t, "WATCHDOG=1 pings", has("WATCHDOG=1", 2))
	cmd.Process.Signal(syscall.SIGHUP)
	guardtest.Eventually(t, "RELOADING=1 then READY=1", func() bool {
		s := got.String()
		i := strings.Index(s, "RELOADING=1")
		return i >= 0 && strings.Contains(s[i:], "MONOTONIC_USEC=") && strings.Contains(s[i:], "READY=1")
	})
	cmd.Process.Signal(syscall.SIGTERM)
	guardtest.Eventually(t, "STOPPING=1", has("STOPPING=1", 1))
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("example under systemd: %v\n%s", waitErr, log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("example did not exit on SIGTERM")
	}
}

func writeExampleConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readExampleLog(path string) string { b, _ := os.ReadFile(path); return string(b) }

// exampleSession reads pid's session ID and controlling terminal from /proc/PID/stat.
func exampleSession(t *testing.T, pid int) (sid, tty int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])) // state ppid pgrp session tty_nr ...
	if len(f) < 5 {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	sid, _ = strconv.Atoi(f[3])
	tty, _ = strconv.Atoi(f[4])
	return sid, tty
}
