package tests

// Hostile input: --retries under systemd (NOTIFY_SOCKET set). Every attempt
// goes through the notify code again: signals, the watchdog, the relay and
// reloads must hold across attempts, not only for the first job.

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/guardtest"
)

// retryJob is a job that fails on its first attempt (exit 1) and, on the
// next, writes DIR/second and runs until SIGTERM, which it notes in
// DIR/term before exiting 0 (short sleeps: nothing outlives a killed run).
func retryJob(dir string) []string {
	return []string{"sh", "-c", `d="$1"
if [ -e "$d/first" ]; then
	trap 'echo term > "$d/term"; exit 0' TERM
	touch "$d/second"
	while :; do sleep 0.2; done
else
	touch "$d/first"
	exit 1
fi`, "job", dir}
}

// A SIGTERM (systemctl stop) to guard run --retries under systemd reaches
// the running attempt and stops the run, as it does without NOTIFY_SOCKET.
func TestRetriesTermUnderSystemd(t *testing.T) {
	for _, notify := range []bool{false, true} {
		name := "plain"
		if notify {
			name = "NOTIFY_SOCKET"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			lock := filepath.Join(lockDir(t), "job.lock")
			var env []string
			if notify {
				env = sdEnv(newSDSocket(t))
			}
			p := startEnv(t, env, guardBin, append([]string{"run", "--lock", lock, "--retries", "1", "--"}, retryJob(dir)...)...)
			guardtest.Eventually(t, "the second attempt", func() bool { _, err := os.Stat(filepath.Join(dir, "second")); return err == nil })
			time.Sleep(200 * time.Millisecond) // its trap is set
			p.cmd.Process.Signal(syscall.SIGTERM)
			deadline := time.Now().Add(15 * time.Second)
			for !p.exited() && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if !p.exited() {
				t.Fatalf("guard still running 15s after SIGTERM (job noted TERM: %v): the signal was lost\n%s",
					fileHas(filepath.Join(dir, "term"), "term"), p.stderr)
			}
			if !fileHas(filepath.Join(dir, "term"), "term") {
				t.Fatalf("the job never got SIGTERM:\n%s", p.stderr)
			}
		})
	}
}

// A SIGTERM during --retry-delay under systemd ends the run at once.
func TestRetryDelayTermUnderSystemd(t *testing.T) {
	s := newSDSocket(t)
	lock := filepath.Join(lockDir(t), "job.lock")
	p := startEnv(t, sdEnv(s), guardBin, "run", "--lock", lock, "--retries", "1", "--retry-delay", "1h", "--", "false")
	guardtest.Eventually(t, "the retry delay", func() bool { return strings.Contains(p.stderr.String(), "trying again") })
	p.cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(15 * time.Second)
	for !p.exited() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !p.exited() {
		t.Fatalf("guard still in --retry-delay 15s after SIGTERM:\n%s", p.stderr)
	}
}

// WATCHDOG=1 keeps coming while a later attempt runs with the lock held:
// systemd must not kill a healthy retry.
func TestRetriesKeepTheWatchdog(t *testing.T) {
	s := newSDSocket(t)
	dir := t.TempDir()
	lock := filepath.Join(lockDir(t), "job.lock")
	env := append(sdEnv(s), "WATCHDOG_USEC=300000")
	p := startEnv(t, env, guardBin, append([]string{"run", "--lock", lock, "--retries", "1", "--"}, retryJob(dir)...)...)
	guardtest.Eventually(t, "the second attempt", func() bool { _, err := os.Stat(filepath.Join(dir, "second")); return err == nil })
	from := len(s.settle(t))
	time.Sleep(3 * time.Second) // ten watchdog periods
	got := s.settle(t)[from:]
	p.cmd.Process.Signal(syscall.SIGKILL)
	for _, d := range got {
		if d == "WATCHDOG=1" {
			return
		}
	}
	t.Fatalf("no WATCHDOG=1 in 3s of the second attempt (WATCHDOG_USEC=300000): %q", got)
}

// --notify job with --retries leaves no relay directory behind.
func TestRetriesRelayDirs(t *testing.T) {
	s := newSDSocket(t)
	rt := t.TempDir()
	lock := filepath.Join(lockDir(t), "job.lock")
	env := append(sdEnv(s), "RUNTIME_DIRECTORY="+rt)
	p := startEnv(t, env, guardBin, "run", "--notify", "job", "--lock", lock, "--retries", "2", "--", "false")
	if code := p.wait(t); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, p.stderr)
	}
	left, err := os.ReadDir(rt)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		var names []string
		for _, e := range left {
			names = append(names, e.Name())
		}
		t.Fatalf("left in RUNTIME_DIRECTORY after guard ended: %v", names)
	}
}

// systemctl reload of a Type=notify-reload unit during --retry-delay: if
// guard says RELOADING=1 it must end the reload with READY=1 (as a standby
// does), or systemd waits out its timeout and fails the reload.
func TestRetryDelayReload(t *testing.T) {
	s := newSDSocket(t)
	lock := filepath.Join(lockDir(t), "job.lock")
	p := startEnv(t, sdEnv(s), guardBin, "run", "--lock", lock, "--retries", "1", "--retry-delay", "1h", "--", "false")
	guardtest.Eventually(t, "the retry delay", func() bool { return strings.Contains(p.stderr.String(), "trying again") })
	from := len(s.settle(t))
	p.cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(3 * time.Second)
	got := s.settle(t)[from:]
	p.cmd.Process.Signal(syscall.SIGKILL)
	reloading := -1
	for i, d := range got {
		if strings.HasPrefix(d, "RELOADING=1") {
			reloading = i
		}
	}
	if reloading < 0 {
		return // no reload started: nothing to end
	}
	for _, d := range got[reloading:] {
		for _, l := range strings.Split(d, "\n") {
			if l == "READY=1" {
				return
			}
		}
	}
	t.Fatalf("RELOADING=1 without READY=1 after it during --retry-delay: %q", got)
}
