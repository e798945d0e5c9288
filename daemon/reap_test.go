//go:build linux

package daemon

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperSupervise supervises "sh -c $HELPER_JOB" as PID 1 (under unshare) or as a child
// subreaper, and exits with the job's status.
func helperSupervise() int {
	cmd := exec.Command("/bin/sh", "-c", os.Getenv("HELPER_JOB"))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	st, err := Supervise(context.Background(), cmd, SuperviseOptions{Subreaper: os.Getpid() != 1, Logger: discardLogger()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 70
	}
	fmt.Println(st)
	return st.ExitCode()
}

// spawnOrphans makes three children that outlive their parent (a subshell), so they are
// reparented to the supervisor, then records that they exist.
const spawnOrphans = `for i in 1 2 3; do (sleep 0.5 & echo $! >>"$HELPER_DIR/orphans"); done; echo spawned >>"$HELPER_DIR/orphans"; `

func TestSuperviseAsPID1(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		skipUnlessRequired(t, "unshare(1) from util-linux is not installed")
	}
	if out, err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").CombinedOutput(); err != nil {
		skipUnlessRequired(t, fmt.Sprintf("cannot create a PID namespace (unshare --pid --fork --mount-proc: %v: %s); needs root or CAP_SYS_ADMIN", err, strings.TrimSpace(string(out))))
	}
	testSupervise(t, func(t *testing.T, env []string) (*exec.Cmd, func(*exec.Cmd) int) {
		cmd := exec.Command("unshare", "--pid", "--fork", "--mount-proc", testBinary(t), "-test.run=^$")
		cmd.Env = env
		// The supervisor is unshare's child: PID 1 in the new namespace.
		return cmd, func(cmd *exec.Cmd) int {
			for _, p := range allProcs() {
				if p.PPID == cmd.Process.Pid {
					return p.PID
				}
			}
			return 0
		}
	})
}

func TestSuperviseAsSubreaper(t *testing.T) {
	testSupervise(t, func(t *testing.T, env []string) (*exec.Cmd, func(*exec.Cmd) int) {
		cmd := exec.Command(testBinary(t), "-test.run=^$")
		cmd.Env = env
		return cmd, func(cmd *exec.Cmd) int { return cmd.Process.Pid }
	})
}

func skipUnlessRequired(t *testing.T, missing string) {
	t.Helper()
	if os.Getenv("GUARD_REQUIRE_PEERS") == "1" {
		t.Fatalf("GUARD_REQUIRE_PEERS=1 but %s", missing)
	}
	t.Skip(missing)
}

// testSupervise runs the supervise helper through launch for each case: orphans are
// reaped while the job runs, SIGTERM to the supervisor reaches the job, and the job's
// status comes back as the exit code.
func testSupervise(t *testing.T, launch func(*testing.T, []string) (*exec.Cmd, func(*exec.Cmd) int)) {
	tests := []struct {
		name string
		job  string
		term bool // send SIGTERM to the supervisor once the orphans are reaped
		want int
	}{
		{name: "job traps TERM", job: `trap 'exit 42' TERM; ` + spawnOrphans + `sleep 30 & wait`, term: true, want: 42},
		{name: "job killed by TERM", job: spawnOrphans + `exec sleep 30`, term: true, want: 128 + int(syscall.SIGTERM)},
		{name: "job exits", job: spawnOrphans + `exit 7`, want: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd, supervisor := launch(t, helperEnviron("supervise", "HELPER_DIR="+dir, "HELPER_JOB="+tt.job))
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			if tt.term {
				eventually(t, "the job to spawn orphans", func() bool {
					b, _ := os.ReadFile(filepath.Join(dir, "orphans"))
					return strings.HasSuffix(string(b), "spawned\n")
				})
				var pid int
				eventually(t, "the supervisor process", func() bool { pid = supervisor(cmd); return pid != 0 })
				// The orphans are the supervisor's children until they exit; then only the
				// job is left, unless they linger as zombies.
				eventually(t, "the orphans to be reaped", func() bool { return onlyJobLeft(pid) })
				if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
			}
			if code := exitCode(t, cmd.Wait()); code != tt.want {
				t.Errorf("exit code %d, want %d", code, tt.want)
			}
		})
	}
}

// onlyJobLeft reports whether pid has exactly one child and no zombie descendants.
func onlyJobLeft(pid int) bool {
	procs := allProcs()
	children := map[int][]procStat{}
	for _, p := range procs {
		children[p.PPID] = append(children[p.PPID], p)
	}
	if len(children[pid]) != 1 {
		return false
	}
	for todo := children[pid]; len(todo) > 0; todo = todo[1:] {
		if todo[0].State == "Z" {
			return false
		}
		todo = append(todo, children[todo[0].PID]...)
	}
	return true
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		s    ExitStatus
		code int
		text string
	}{
		{ExitStatus{Code: 0}, 0, "exit code 0"},
		{ExitStatus{Code: 7}, 7, "exit code 7"},
		{ExitStatus{Code: -1, Signal: syscall.SIGTERM}, 143, "killed by signal 15 (terminated)"},
	}
	for _, tt := range tests {
		if got := tt.s.ExitCode(); got != tt.code {
			t.Errorf("%+v.ExitCode() = %d, want %d", tt.s, got, tt.code)
		}
		if got := tt.s.String(); got != tt.text {
			t.Errorf("%+v.String() = %q, want %q", tt.s, got, tt.text)
		}
	}
}

// The in-process tests below run Supervise in the test binary itself, forwarding nothing
// (so the test process's own signal handling is untouched).

func TestSuperviseContextStopsJob(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.Command("sleep", "30")
	started := make(chan int, 1)
	done := make(chan ExitStatus, 1)
	go func() {
		st, err := Supervise(ctx, cmd, SuperviseOptions{Forward: []os.Signal{}, Started: func(pid int) { started <- pid }})
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	if pid := recv(t, "the job to start", started); pid != cmd.Process.Pid {
		t.Errorf("Started(%d), want %d", pid, cmd.Process.Pid)
	}
	cancel()
	if st := recv(t, "Supervise to return", done); st.Signal != syscall.SIGTERM {
		t.Errorf("status %v, want killed by SIGTERM", st)
	}
}

func TestSuperviseKillsAfterGrace(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	// The job ignores SIGTERM (and so does its sleep, which inherits that).
	cmd := exec.Command("/bin/sh", "-c", `trap '' TERM; touch "$0/trapped"; sleep 30 & wait`, dir)
	done := make(chan ExitStatus, 1)
	go func() {
		st, _ := Supervise(ctx, cmd, SuperviseOptions{Forward: []os.Signal{}, KillAfter: 100 * time.Millisecond})
		done <- st
	}()
	eventually(t, "the job to ignore SIGTERM", func() bool {
		_, err := os.Stat(filepath.Join(dir, "trapped"))
		return err == nil
	})
	cancel()
	if st := recv(t, "Supervise to return", done); st.Signal != syscall.SIGKILL {
		t.Errorf("status %v, want killed by SIGKILL after the grace period", st)
	}
}

func TestSuperviseReturnsStartError(t *testing.T) {
	_, err := Supervise(context.Background(), exec.Command(filepath.Join(t.TempDir(), "missing")), SuperviseOptions{Forward: []os.Signal{}})
	if err == nil {
		t.Error("Supervise of a missing program: no error")
	}
}
