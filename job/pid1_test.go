package job

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/guardkit/guard/internal/guardtest"
)

func contextWithCause() (context.Context, context.CancelCauseFunc) {
	return context.WithCancelCause(context.Background())
}

// As PID 1 of a PID namespace (a container's init), the supervisor reaps
// orphans, kills what the job left behind, and exits as the job did.
func TestAsPID1(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		guardtest.Missing(t, "unshare(1) from util-linux is not installed")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := `for i in 1 2 3; do (sleep 0.2 &) ; done; sleep 300 & echo $! >"$D/pid"; echo "$PPID" >"$D/parent"; exit 7`
	cmd := exec.Command("unshare", "--pid", "--fork", "--mount-proc", exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "GUARD_JOB_TEST_SH="+script, "D="+dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		guardtest.Missing(t, "cannot run in a new PID namespace: "+err.Error())
	}
	if strings.Contains(string(out), "unshare failed") {
		guardtest.Missing(t, "cannot create a PID namespace (needs root): "+string(out))
	}
	if code := cmd.ProcessState.ExitCode(); code != 7 {
		t.Fatalf("exit %d, want the job's 7; output %q", code, out)
	}
	// unshare returned: its child, PID 1 of the namespace, ended, which the
	// kernel allows only once every process of the namespace is gone.
	if b, _ := os.ReadFile(dir + "/parent"); strings.TrimSpace(string(b)) != "1" {
		t.Fatalf("the job's parent in the namespace is %q, want the supervisor as PID 1", b)
	}
}
