package job

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/proc"

	"github.com/guardkit/guard/internal/guardtest"
)

// The test binary doubles as a supervisor: GUARD_JOB_TEST_SH=SCRIPT makes it
// run "sh -c SCRIPT" as a job (with GUARD_JOB_TEST_LEFTOVERS as the policy)
// and exit with the main process's exit code. Run under unshare, it is PID 1.
func TestMain(m *testing.M) {
	if code, ok := RunInit(); ok {
		os.Exit(code)
	}
	if script := os.Getenv("GUARD_JOB_TEST_SH"); script != "" {
		os.Exit(superviseHelper(script))
	}
	os.Exit(m.Run())
}

func superviseHelper(script string) int {
	p, err := ParsePolicy(os.Getenv("GUARD_JOB_TEST_LEFTOVERS"))
	if err != nil {
		p = Kill
	}
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	j, err := Start(context.Background(), Spec{Cmd: cmd, Leftovers: p, KillAfter: time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 70
	}
	return j.Wait().Status.ExitCode()
}

// waitLimit bounds every wait in these tests: generous, for loaded machines;
// a test that hits it fails instead of hanging.
const waitLimit = 30 * time.Second

// wait waits for j with a deadline.
func wait(t *testing.T, j *Job) Result {
	t.Helper()
	select {
	case <-j.Done():
		return j.Wait()
	case <-time.After(waitLimit):
		t.Fatalf("job did not end within %v", waitLimit)
		return Result{}
	}
}

// sh starts "sh -c script" as a job in dir ($D in the script).
func sh(t *testing.T, spec Spec, dir, script string) *Job {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = append(os.Environ(), "D="+dir)
	cmd.Stderr = os.Stderr
	spec.Cmd = cmd
	j, err := Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		j.Kill(nil)
		<-j.Done()
	})
	return j
}

// pidFrom waits for a file holding a PID and returns it.
func pidFrom(t *testing.T, path string) int {
	t.Helper()
	var pid int
	guardtest.Eventually(t, path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}

// running reports whether pid is a live process (not a zombie).
func running(pid int) bool {
	st, err := proc.ReadStat(pid)
	return err == nil && !st.Zombie()
}

// killLater makes sure a process a test let run on is gone at the end.
func killLater(t *testing.T, pid int) {
	t.Cleanup(func() {
		if st, err := proc.ReadStat(pid); err == nil {
			if p, err := proc.Open(pid, st.StartTicks); err == nil {
				p.Signal(syscall.SIGKILL)
				p.Close()
			}
		}
	})
}
