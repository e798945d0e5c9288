package pidfile

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guardkit/guard/internal/proc"
)

// runCopy copies the sleep binary to dir/name, runs it and waits until it
// runs. It is killed and reaped at cleanup.
func runCopy(t *testing.T, dir, name string) *exec.Cmd {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skipf("sleep(1) not found: %v", err)
	}
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, "3600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if !waitUntil(func() bool { return comm(cmd.Process.Pid) == name }) {
		t.Fatalf("%s never started", name)
	}
	return cmd
}

func TestMatchesExec(t *testing.T) {
	victim := startVictim(t)
	pid := victim.Process.Pid
	sleep, _ := exec.LookPath("sleep")
	if err := MatchesExec(pid, sleep); err != nil {
		t.Errorf("MatchesExec(sleep, %s) = %v", sleep, err)
	}
	link := filepath.Join(t.TempDir(), "sleep-link")
	os.Symlink(sleep, link)
	if err := MatchesExec(pid, link); err != nil {
		t.Errorf("MatchesExec(sleep, a symlink to it) = %v", err)
	}
	var ee *ExecError
	err := MatchesExec(pid, os.Args[0])
	if !errors.As(err, &ee) || !errors.Is(err, ErrExecMismatch) || ee.PID != pid || ee.Want != os.Args[0] {
		t.Fatalf("MatchesExec(sleep, test binary) = %v, want *ExecError", err)
	}
	if real, _ := filepath.EvalSymlinks(sleep); ee.Exe != real {
		t.Errorf("Exe = %q, want %q", ee.Exe, real)
	}
	if err := MatchesExec(pid, filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("MatchesExec(missing path) = %v, want fs.ErrNotExist", err)
	}
	for _, bad := range []int{-1, 0, 1, proc.PIDMax()} {
		if err := MatchesExec(bad, sleep); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("MatchesExec(%d) = %v, want fs.ErrInvalid", bad, err)
		}
	}
	victim.Process.Kill()
	victim.Wait()
	if err := MatchesExec(pid, sleep); !errors.Is(err, proc.ErrGone) {
		t.Errorf("MatchesExec(reaped) = %v, want proc.ErrGone", err)
	}
}

func TestMatchesExecDeleted(t *testing.T) {
	dir := t.TempDir()
	cmd := runCopy(t, dir, "olddaemon")
	path := filepath.Join(dir, "olddaemon")
	if err := MatchesExec(cmd.Process.Pid, path); err != nil {
		t.Fatalf("before deleting: %v", err)
	}
	os.Remove(path)
	err := MatchesExec(cmd.Process.Pid, path)
	var ee *ExecError
	if !errors.As(err, &ee) || !strings.Contains(ee.Reason, "deleted") || !strings.HasSuffix(ee.Exe, " (deleted)") {
		t.Fatalf("MatchesExec(deleted binary) = %v, want an *ExecError saying it was deleted", err)
	}
}

func TestMatchesExecReplaced(t *testing.T) {
	dir := t.TempDir()
	cmd := runCopy(t, dir, "daemon")
	path := filepath.Join(dir, "daemon")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// An upgrade: the new binary renamed over the old one.
	if err := os.WriteFile(path+".new", b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	err = MatchesExec(cmd.Process.Pid, path)
	var ee *ExecError
	if !errors.As(err, &ee) || !strings.Contains(ee.Reason, "replaced") {
		t.Fatalf("MatchesExec(replaced binary) = %v, want an *ExecError saying it was replaced", err)
	}
	t.Log(err)
}
