package pidfile

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/internal/proc"

	"github.com/guardkit/guard/internal/guardtest"
)

// TestHostilePIDFilesNeverSignalled feeds PID files naming init, "every
// process", process group 0, a wrapped 32-bit -1 and the reader itself to
// the whole read-inspect-signal path, and proves that no process received a
// signal. The dangerous part runs in a fresh PID namespace
// (unshare --pid --fork --mount-proc), so a bug can only hurt processes
// there: its init (PID 1) and a victim, both blocked-sleep processes that
// record any signal as pending.
func TestHostilePIDFilesNeverSignalled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PID namespace; skipped with -short")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		guardtest.Missing(t, fmt.Sprintf("unshare(1) from util-linux not found: %v", err))
	}
	if _, err := exec.LookPath("sleep"); err != nil {
		guardtest.Missing(t, fmt.Sprintf("sleep(1) not found: %v", err))
	}
	args := []string{"--pid", "--fork", "--mount-proc", "--kill-child"}
	if os.Geteuid() != 0 {
		args = append([]string{"--user", "--map-root-user"}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	helper := helperCmd("nsinit")
	cmd := exec.CommandContext(ctx, unshare, append(args, helper.Args...)...)
	cmd.Env = helper.Env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		guardtest.Missing(t, fmt.Sprintf("cannot run unshare: %v", err))
	}
	var lines []string
	done := false
	for sc := bufio.NewScanner(out); !done && sc.Scan(); {
		lines = append(lines, sc.Text())
		done = sc.Text() == "DONE"
	}
	// Killing unshare makes the kernel SIGKILL the namespace's init
	// (--kill-child), which takes every process in it down.
	cmd.Process.Kill()
	cmd.Wait()
	if len(lines) == 0 && strings.Contains(stderr.String(), "unshare failed") {
		guardtest.Missing(t, fmt.Sprintf("unshare --pid --fork --mount-proc does not work here: %s", strings.TrimSpace(stderr.String())))
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "FAIL") {
			t.Error(l)
		} else {
			t.Log(l)
		}
	}
	if !done {
		t.Fatalf("namespace helper did not finish; stderr:\n%s", stderr.String())
	}
}

// nsInit runs as PID 1 of the new namespace: it starts the hostile helper,
// then becomes a blocked sleep, a victim that records any signal.
func nsInit() int {
	if os.Getpid() != 1 {
		fmt.Println("FAIL: nsinit is not PID 1 of a new PID namespace; refusing to go on")
		return 2
	}
	h := helperCmd("hostile")
	h.Stdout, h.Stderr = os.Stdout, os.Stderr
	if err := h.Start(); err != nil {
		fmt.Println("FAIL: start hostile helper:", err)
		return 2
	}
	// Only the hostile helper keeps the test's stdout, so the test sees
	// EOF when it ends, however it ends.
	if null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
		unix.Dup2(int(null.Fd()), 1)
	}
	return blockedSleep()
}

// hostile runs as PID 2 of the namespace and prints "FAIL: ..." lines for
// anything wrong, then "DONE".
func hostile() int {
	failed := func(format string, args ...any) { fmt.Printf("FAIL: "+format+"\n", args...) }
	self := os.Getpid()
	// Our parent is PID 1, and it turns into sleep: we are in the new
	// namespace that nsinit (which checked that it is PID 1) made.
	if os.Getppid() != 1 {
		failed("hostile helper's parent is %d, not 1: not in a fresh namespace; refusing to go on", os.Getppid())
		return 2
	}
	if !waitUntil(func() bool { return comm(1) == "sleep" }) {
		failed("PID 1 never became the blocked sleep; refusing to go on")
		return 2
	}
	victim := helperCmd("blocked-sleep")
	victim.Stderr = os.Stderr
	if err := victim.Start(); err != nil {
		failed("start victim: %v", err)
		return 2
	}
	defer func() { victim.Process.Kill(); victim.Wait() }()
	if !waitUntil(func() bool { return comm(victim.Process.Pid) == "sleep" }) {
		failed("victim never became sleep")
		return 2
	}
	dir, err := os.MkdirTemp("", "guard-hostile-")
	if err != nil {
		failed("%v", err)
		return 2
	}
	defer os.RemoveAll(dir)

	// try takes the full path a caller would: Inspect, then Process, then
	// Signal. Reaching Signal is the bug this test exists to catch.
	try := func(name string, info *Info) {
		p, err := info.Process("")
		if err == nil {
			p.Signal(syscall.SIGTERM)
			p.Close()
			failed("%s: Process(%d) returned a handle, and it was signalled", name, info.PID)
			return
		}
		fmt.Printf("ok %s: refused: %v\n", name, err)
	}
	for i, content := range []string{"1\n", "1", "-1\n", "0\n", "4294967295\n", "-2\n", strconv.Itoa(self) + "\n"} {
		path := filepath.Join(dir, fmt.Sprintf("hostile%d.pid", i))
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			failed("%v", err)
			continue
		}
		info, err := Inspect(path)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				failed("Inspect(%q) = %v, want ErrMalformed", content, err)
			}
			fmt.Printf("ok %q: %v\n", content, err)
			continue
		}
		if info.PID != self || info.State != Running {
			failed("Inspect(%q) = pid %d %v (%s); only our own PID may parse, as Running", content, info.PID, info.State, info.Reason)
		}
		try(fmt.Sprintf("file %q", content), info)
	}
	// A caller could build an Info by hand and skip Inspect.
	path := filepath.Join(dir, "self.pid")
	os.WriteFile(path, []byte(strconv.Itoa(self)+"\n"), 0o644)
	for _, pid := range []int{-1, 0, 1, self, -self, 1<<32 - 1, proc.PIDMax()} {
		st, _ := proc.ReadStat(pid)
		info := &Info{Snapshot: Snapshot{Path: path, PID: pid}, State: Running, StartTicks: st.StartTicks}
		try(fmt.Sprintf("forged Info for pid %d", pid), info)
		if p, err := proc.Open(pid, st.StartTicks); err == nil {
			p.Signal(syscall.SIGTERM)
			p.Close()
			failed("proc.Open(%d) returned a handle, and it was signalled", pid)
		}
	}
	for _, pid := range []int{1, victim.Process.Pid} {
		if err := unsignalled(pid); err != nil {
			failed("victim: %v", err)
		} else {
			fmt.Printf("ok pid %d (%s) received no signal\n", pid, comm(pid))
		}
	}
	// Control: the one legitimate target, signalled the legitimate way,
	// must show up as pending, or the checks above prove nothing.
	vpath := filepath.Join(dir, "victim.pid")
	os.WriteFile(vpath, []byte(strconv.Itoa(victim.Process.Pid)+"\n"), 0o644)
	if info, err := Inspect(vpath); err != nil || info.State != Running {
		failed("control: Inspect(victim) = %+v, %v; want Running", info, err)
	} else if p, err := info.Process(""); err != nil {
		failed("control: Process(victim): %v", err)
	} else {
		p.Signal(syscall.SIGUSR1)
		p.Close()
		if pending(victim.Process.Pid)&(1<<(syscall.SIGUSR1-1)) == 0 {
			failed("control: SIGUSR1 sent to the victim is not pending; the checks above prove nothing")
		} else {
			fmt.Println("ok control: a signal sent to the victim through Process shows as pending")
		}
	}
	fmt.Println("DONE")
	return 0
}
