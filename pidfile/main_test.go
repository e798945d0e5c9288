package pidfile

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// helperEnv selects what the test binary does when re-executed as a helper
// process (the os/exec TestMain pattern).
const helperEnv = "GUARD_PIDFILE_HELPER"

func TestMain(m *testing.M) {
	switch mode := os.Getenv(helperEnv); mode {
	case "":
		os.Exit(m.Run())
	case "exit":
		os.Exit(0)
	case "blocked-sleep":
		os.Exit(blockedSleep())
	case "nsinit":
		os.Exit(nsInit())
	case "hostile":
		os.Exit(hostile())
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", helperEnv, mode)
		os.Exit(2)
	}
}

// blockedSleep becomes "sleep 3600" with every signal but SIGURG blocked (the
// mask survives execve). Such a victim records any signal sent to it, other
// than SIGKILL/SIGSTOP, as pending in /proc/PID/status, forever: a test can
// then prove that nothing was sent, with no timing window. SIGKILL would
// leave a zombie, SIGSTOP a stopped process; both are visible too. SIGURG,
// the Go runtime's preemption signal, stays unblocked so that none is left
// pending from before the exec (and GODEBUG=asyncpreemptoff=1 avoids them).
func blockedSleep() int {
	path, err := exec.LookPath("sleep")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	runtime.LockOSThread()
	var set unix.Sigset_t
	for i := range set.Val {
		set.Val[i] = ^set.Val[i]
	}
	set.Val[0] &^= 1 << (unix.SIGURG - 1)
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil); err != nil {
		fmt.Fprintln(os.Stderr, "sigprocmask:", err)
		return 2
	}
	err = unix.Exec(path, []string{"sleep", "3600"}, os.Environ())
	fmt.Fprintln(os.Stderr, "exec sleep:", err)
	return 2
}

// helperCmd returns a command that re-runs the test binary as helper mode.
func helperCmd(mode string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "GODEBUG=asyncpreemptoff=1",
		"GORACE=atexit_sleep_ms=0") // under -race, exit at once
	return cmd
}

// comm returns the command name of pid, or "" if it cannot be read.
func comm(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// waitUntil polls cond every few milliseconds for up to 30 seconds.
func waitUntil(cond func() bool) bool {
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// startVictim starts a blocked-sleep helper and waits until it runs sleep.
// It is killed and reaped at cleanup.
func startVictim(t *testing.T) *exec.Cmd {
	t.Helper()
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skipf("sleep(1) not found: %v", err)
	}
	cmd := helperCmd("blocked-sleep")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // no-op if the test reaped it already
		cmd.Wait()
	})
	if !waitUntil(func() bool { return comm(cmd.Process.Pid) == "sleep" }) {
		t.Fatalf("helper %d never became sleep", cmd.Process.Pid)
	}
	return cmd
}

// procStatus reads the named fields of /proc/PID/status.
func procStatus(pid int) (map[string]string, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m, sc.Err()
}

// unsignalled proves that no signal has reached a blocked-sleep victim:
// nothing pending, not a zombie, not stopped, and SIGTERM still blocked (so
// the proof means something).
func unsignalled(pid int) error {
	st, err := procStatus(pid)
	if err != nil {
		return fmt.Errorf("pid %d: %v", pid, err)
	}
	if s := st["State"]; s == "" || strings.ContainsAny(s[:1], "ZXTt") {
		return fmt.Errorf("pid %d: state %q", pid, s)
	}
	for _, k := range []string{"SigPnd", "ShdPnd"} {
		if n, err := strconv.ParseUint(st[k], 16, 64); err != nil || n != 0 {
			return fmt.Errorf("pid %d: %s = %q: a signal was sent", pid, k, st[k])
		}
	}
	blk, err := strconv.ParseUint(st["SigBlk"], 16, 64)
	if err != nil || blk&(1<<(syscall.SIGTERM-1)) == 0 {
		return fmt.Errorf("pid %d: SigBlk = %q: SIGTERM not blocked, cannot tell", pid, st["SigBlk"])
	}
	return nil
}

// pending returns the signals pending for pid (shared and its thread's).
func pending(pid int) uint64 {
	st, _ := procStatus(pid)
	a, _ := strconv.ParseUint(st["SigPnd"], 16, 64)
	b, _ := strconv.ParseUint(st["ShdPnd"], 16, 64)
	return a | b
}
