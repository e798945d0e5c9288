// Package tests drives the real guard binary, and real peers such as
// util-linux flock(1), the way users do: real processes, signals and files.
package tests

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	guardBin  string // the guard binary under test
	holderBin string // testdata/holder
)

func TestMain(m *testing.M) {
	// A test re-run inside a namespace gets the binaries already built.
	guardBin, holderBin = os.Getenv("GUARD_TEST_BIN"), os.Getenv("GUARD_TEST_HOLDER")
	if guardBin == "" {
		dir, err := os.MkdirTemp("", "guard-tests-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		guardBin, holderBin = filepath.Join(dir, "guard"), filepath.Join(dir, "holder")
		for bin, pkg := range map[string]string{guardBin: "github.com/guardkit/guard/cmd/guard", holderBin: "github.com/guardkit/guard/tests/testdata/holder"} {
			out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
			if err != nil {
				fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
				os.Exit(2)
			}
		}
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// lockDir returns a fresh directory guard accepts for locks.
func lockDir(t *testing.T) string {
	t.Helper()
	return t.TempDir()
}

// result is a finished command.
type result struct {
	code   int
	stdout string
	stderr string
}

// guard runs the guard binary to completion.
func guard(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, guardBin, args...)
}

// guardEnv runs the guard binary to completion with env added to the
// test's environment.
func guardEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return runEnv(t, env, guardBin, args...)
}

func run(t *testing.T, bin string, args ...string) result {
	t.Helper()
	return runEnv(t, nil, bin, args...)
}

func runEnv(t *testing.T, env []string, bin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
}

// proc is a background process started by a test.
type proc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
}

func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	return startEnv(t, nil, bin, args...)
}

// startEnv starts bin with the test's environment plus env, in its own
// process group, like start.
func startEnv(t *testing.T, env []string, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	cmd.WaitDelay = time.Second // a grandchild may keep the pipe open
	// Its own process group, so the cleanup ends whatever it started too
	// (flock(1)'s child, a job's children).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
	return p
}

func startGuard(t *testing.T, args ...string) *proc { t.Helper(); return start(t, guardBin, args...) }

// wait waits for the process to end and returns its exit code (-1 if it was
// killed by a signal).
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("process %v did not end", p.cmd.Args)
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// fileHas reports whether the file exists and contains s.
func fileHas(path, s string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(b), s)
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && len(b) > i+2 && b[i+2] != 'Z'
}

// held reports whether guard status says the lock is held.
func held(t *testing.T, lock string) bool {
	t.Helper()
	return guard(t, "status", "--lock", lock).code == 0
}

// sleeper starts an unrelated process (an innocent bystander) and returns
// its PID.
func sleeper(t *testing.T) *proc {
	t.Helper()
	return start(t, "sleep", "1000")
}

func signalOf(p *proc) syscall.Signal {
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return ws.Signal()
	}
	return 0
}
