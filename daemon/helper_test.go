//go:build linux

// The tests drive real processes through /proc, ptys and PID namespaces: Linux only.

package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv selects a helper mode: the test binary re-executed as a real process (the
// os/exec TestMain pattern). Detach re-executes it again, and TestMain routes every stage
// back to the same helper.
const helperEnv = "GUARD_DAEMON_TEST_HELPER"

// waitFor is the deadline for any condition a test waits on: generous, for loaded
// machines.
const waitFor = 20 * time.Second

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

func runHelper(mode string) int {
	switch mode {
	case "detach":
		return helperDetach()
	case "reload":
		return helperReload()
	case "stop":
		return helperStop()
	}
	fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
	return 2
}

// helperEnviron is the environment for a helper: ours without anything that would make it
// think it runs under systemd or is already a daemon stage, plus kv.
func helperEnviron(mode string, kv ...string) []string {
	var env []string
	for _, e := range os.Environ() {
		name, _, _ := strings.Cut(e, "=")
		switch name {
		case NotifySocketEnv, "INVOCATION_ID", WatchdogUsecEnv, WatchdogPIDEnv, "JOURNAL_STREAM", StageEnv, helperEnv:
			continue
		}
		if strings.HasPrefix(name, "HELPER_") || name == "GORACE" {
			continue
		}
		env = append(env, e)
	}
	// Under -race every exit sleeps a second by default; helpers exit a lot.
	env = append(env, helperEnv+"="+mode, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	return append(env, kv...)
}

// testBinary is the absolute path of the running test binary.
func testBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// helperCmd returns a command that runs the test binary as helper mode.
func helperCmd(t *testing.T, mode string, kv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(testBinary(t), "-test.run=^$")
	cmd.Env = helperEnviron(mode, kv...)
	return cmd
}

// writeFileAtomic writes data to path through a rename, so readers never see it partial.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b)
}

// readJSON reads path into v, reporting whether it exists and parses.
func readJSON(path string, v any) bool {
	b, err := os.ReadFile(path)
	return err == nil && json.Unmarshal(b, v) == nil
}

// procStat is the part of /proc/PID/stat the tests look at.
type procStat struct {
	PID, PPID, PGID, SID, TTYNr int
	State                       string
}

func readProcStat(pid string) (procStat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return procStat{}, err
	}
	// The command name may contain spaces and parentheses: fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 5 {
		return procStat{}, fmt.Errorf("malformed /proc/%s/stat", pid)
	}
	st := procStat{State: f[0]}
	st.PID, _ = strconv.Atoi(pid)
	st.PPID, _ = strconv.Atoi(f[1])
	st.PGID, _ = strconv.Atoi(f[2])
	st.SID, _ = strconv.Atoi(f[3])
	st.TTYNr, _ = strconv.Atoi(f[4])
	return st, nil
}

// goneOrZombie reports whether pid has exited (possibly not yet reaped by its parent).
func goneOrZombie(pid int) bool {
	st, err := readProcStat(strconv.Itoa(pid))
	return err != nil || st.State == "Z" || st.State == "X"
}

// killIfOurs sends SIGKILL to pid if it still runs the test binary: cleanup for daemons
// that are not our children.
func killIfOurs(t *testing.T, pid int) {
	if pid <= 1 || goneOrZombie(pid) {
		return
	}
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && exe == testBinary(t) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// exitCode returns the exit code of a finished command's Wait error.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatalf("wait: %v", err)
	return -1
}
