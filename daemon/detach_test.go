//go:build linux

package daemon

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/guardtest"
)

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// detachRun is the outcome of starting the detach helper.
type detachRun struct {
	dir            string
	code           int
	stdout, stderr string
	facts          daemonFacts // zero if the daemon wrote none
}

// startDetached runs the detach helper's starting process to its end, either directly or
// inside a pseudo-terminal (script(1)) with descriptor 7 deliberately left open on
// dir/leaked. The daemon, if one was left running, is killed at cleanup.
func startDetached(t *testing.T, inTerminal bool, action string, kv ...string) detachRun {
	t.Helper()
	dir := t.TempDir()
	env := append([]string{"HELPER_DIR=" + dir, "HELPER_ACTION=" + action}, kv...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
	defer cancel()
	var cmd *exec.Cmd
	if inTerminal {
		if _, err := exec.LookPath("script"); err != nil {
			t.Skip("script(1) from util-linux is needed to run the starter in a pseudo-terminal")
		}
		leak := filepath.Join(dir, "leaked")
		if err := os.WriteFile(leak, []byte("must not reach the daemon\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		line := fmt.Sprintf("exec 7<%s; exec %s -test.run='^$'", shellQuote(leak), shellQuote(testBinary(t)))
		cmd = exec.CommandContext(ctx, "script", "-qec", line, "/dev/null")
		cmd.Env = helperEnviron("detach", env...)
	} else {
		cmd = helperCmd(t, "detach", env...)
		cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
		cmd.Env = helperEnviron("detach", env...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	r := detachRun{dir: dir, code: exitCode(t, err), stdout: stdout.String(), stderr: stderr.String()}
	readJSON(filepath.Join(dir, "facts.json"), &r.facts)
	t.Cleanup(func() { killIfOurs(t, r.facts.PID) })
	return r
}

// checkDaemonFacts checks what every detached daemon must be.
func checkDaemonFacts(t *testing.T, f daemonFacts, stdio string, extra string) {
	t.Helper()
	if !f.Detached {
		t.Errorf("Handle.Detached() = false in the daemon")
	}
	if f.TTYNr != 0 {
		t.Errorf("daemon has a controlling terminal: tty_nr = %d", f.TTYNr)
	}
	if f.SID == f.PID {
		t.Errorf("daemon is a session leader (sid %d = pid)", f.SID)
	}
	if f.Cwd != "/" {
		t.Errorf("cwd = %q, want /", f.Cwd)
	}
	if f.Umask != "0027" {
		t.Errorf("umask = %s, want 0027", f.Umask)
	}
	if f.MarkerSelf || f.MarkerGrandchild {
		t.Errorf("%s left in the environment (self %v, grandchild %v)", StageEnv, f.MarkerSelf, f.MarkerGrandchild)
	}
	for fd, want := range []string{"/dev/null", stdio, stdio} {
		if f.FDs[fd] != want {
			t.Errorf("fd %d -> %q, want %q", fd, f.FDs[fd], want)
		}
	}
	want := 3 // the readiness pipe follows the extra files
	if extra != "" {
		if f.FDs[3] != extra || f.Files != 1 {
			t.Errorf("fd 3 -> %q (Files %d), want the extra file %q", f.FDs[3], f.Files, extra)
		}
		want = 4
	}
	if !strings.HasPrefix(f.FDs[want], "pipe:") {
		t.Errorf("fd %d -> %q, want the readiness pipe", want, f.FDs[want])
	}
	for fd, target := range f.FDs {
		if fd <= want || strings.HasPrefix(target, "anon_inode:") || strings.HasPrefix(target, "/sys/fs/cgroup/") {
			continue // ours, or the Go runtime's own (epoll, eventfd, pidfd, cgroup CPU limit)
		}
		t.Errorf("unexpected descriptor %d -> %q reached the daemon", fd, target)
	}
}

func TestDetachFromTerminal(t *testing.T) {
	extra := filepath.Join(t.TempDir(), "extra")
	if err := os.WriteFile(extra, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := startDetached(t, true, "ready", "HELPER_EXTRA="+extra)
	if r.code != 0 {
		t.Fatalf("starter exit code %d, want 0; output:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(r.dir, "readying")); err != nil {
		t.Fatalf("starter exited 0 before the daemon called Ready: %v", err)
	}
	checkDaemonFacts(t, r.facts, "/dev/null", extra)
	for fd, target := range r.facts.FDs {
		if target == filepath.Join(r.dir, "leaked") {
			t.Errorf("the starter's leaked descriptor 7 reached the daemon as %d", fd)
		}
	}
	if strings.TrimSpace(r.stdout+r.stderr) != "" {
		t.Errorf("starter printed %q, want nothing", r.stdout+r.stderr)
	}

	// script has exited, so the terminal is gone. A SIGHUP from the hangup would have
	// been generated before script's exit; SIGUSR2, sent now, is a barrier behind it.
	if err := syscall.Kill(r.facts.PID, syscall.SIGUSR2); err != nil {
		t.Fatalf("daemon gone after the terminal closed: %v", err)
	}
	sigFile := filepath.Join(r.dir, "signals")
	guardtest.Eventually(t, "the daemon to record SIGUSR2", func() bool {
		b, _ := os.ReadFile(sigFile)
		return strings.Contains(string(b), syscall.SIGUSR2.String())
	})
	if b, _ := os.ReadFile(sigFile); strings.Contains(string(b), syscall.SIGHUP.String()) {
		t.Errorf("daemon received SIGHUP when its starter's terminal closed; signals:\n%s", b)
	}
	if err := syscall.Kill(r.facts.PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	guardtest.Eventually(t, "the daemon to exit on SIGTERM", func() bool { return goneOrZombie(r.facts.PID) })
}

func TestDetachPTYSlaveDoesNotBecomeControllingTerminal(t *testing.T) {
	r := startDetached(t, false, "ready", "HELPER_PTY=1")
	if r.code != 0 {
		t.Fatalf("starter exit code %d, want 0; stderr: %s", r.code, r.stderr)
	}
	if r.facts.PTYSlave == "" {
		t.Fatal("daemon did not open a pty slave")
	}
	if r.facts.TTYNrAfterPTY != 0 {
		t.Errorf("after opening %s without O_NOCTTY, tty_nr = %d, want 0 (not a session leader)", r.facts.PTYSlave, r.facts.TTYNrAfterPTY)
	}
	checkDaemonFacts(t, r.facts, "/dev/null", "")
}

func TestDetachOutputFileAndReopen(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.log")
	if err := os.WriteFile(out, []byte("old line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startDetached(t, false, "ready", "HELPER_OUTPUT="+out)
	if r.code != 0 {
		t.Fatalf("starter exit code %d, want 0; stderr: %s", r.code, r.stderr)
	}
	checkDaemonFacts(t, r.facts, out, "")
	b, _ := os.ReadFile(out)
	for _, want := range []string{"old line\n", "daemon stdout line\n", "daemon stderr line\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("output file lacks %q (appended, not truncated):\n%s", want, b)
		}
	}
	if err := os.Rename(out, out+".1"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(r.facts.PID, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	guardtest.Eventually(t, "the output to be reopened at its path", func() bool {
		b, _ := os.ReadFile(out)
		return string(b) == "after reopen\n"
	})
}

func TestDetachFailures(t *testing.T) {
	tests := []struct {
		name     string
		action   string
		env      []string
		wantCode int
		wantErr  string // stderr of the starting process contains it
		exact    bool
	}{
		{name: "fail with code", action: "fail", wantCode: 75, wantErr: "lock /run/x.lock busy: held by pid 1234\n", exact: true},
		{name: "exit before ready", action: "die", wantCode: 1, wantErr: "exited before it was ready"},
		{name: "start timeout", action: "hang", env: []string{"HELPER_TIMEOUT=1s"}, wantCode: 1, wantErr: "not ready within the start timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startDetached(t, false, tt.action, tt.env...)
			if r.code != tt.wantCode {
				t.Errorf("starter exit code %d, want %d; stderr: %s", r.code, tt.wantCode, r.stderr)
			}
			if tt.exact && r.stderr != tt.wantErr || !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("starter stderr %q, want %q", r.stderr, tt.wantErr)
			}
			if r.facts.PID == 0 {
				t.Fatal("the daemon never ran")
			}
			guardtest.Eventually(t, "the daemon to be gone", func() bool { return goneOrZombie(r.facts.PID) })
		})
	}
}

func TestDetachStaysInForegroundUnderSystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dir := t.TempDir()
	cmd := helperCmd(t, "detach", "HELPER_DIR="+dir, "HELPER_ACTION=ready", NotifySocketEnv+"="+sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if got := readDatagram(t, conn); got != "READY=1" {
		t.Fatalf("got %q, want READY=1", got)
	}
	var f daemonFacts
	if !readJSON(filepath.Join(dir, "facts.json"), &f) {
		t.Fatal("no facts")
	}
	if f.Detached || f.PID != cmd.Process.Pid {
		t.Errorf("under systemd: Detached %v, pid %d; want the foreground process %d", f.Detached, f.PID, cmd.Process.Pid)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, cmd.Wait()); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}

func TestShouldDetach(t *testing.T) {
	tests := []struct {
		name, env, value string
		want             bool
	}{
		{name: "plain", want: true},
		{name: "notify socket", env: NotifySocketEnv, value: "/run/systemd/notify"},
		{name: "invocation id", env: "INVOCATION_ID", value: "0123abcd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(NotifySocketEnv, "")
			t.Setenv("INVOCATION_ID", "")
			if tt.env != "" {
				t.Setenv(tt.env, tt.value)
			}
			ok, reason := ShouldDetach()
			if ok != tt.want || ok == (reason != "") {
				t.Errorf("ShouldDetach() = %v, %q; want %v with a reason iff false", ok, reason, tt.want)
			}
		})
	}
}

func TestParseStage(t *testing.T) {
	tests := []struct {
		in           string
		stage, extra int
		bad          bool
	}{
		{in: ""},
		{in: "1:0", stage: 1},
		{in: "2:3", stage: 2, extra: 3},
		{in: "3:0", bad: true},
		{in: "1", bad: true},
		{in: "2:-1", bad: true},
		{in: "x:y", bad: true},
	}
	for _, tt := range tests {
		stage, extra, err := parseStage(tt.in)
		if (err != nil) != tt.bad || stage != tt.stage || extra != tt.extra {
			t.Errorf("parseStage(%q) = %d, %d, %v", tt.in, stage, extra, err)
		}
	}
	t.Setenv(StageEnv, "bogus")
	if _, err := Detach(DetachOptions{}); err == nil {
		t.Error("Detach with a malformed marker: no error")
	}
}
