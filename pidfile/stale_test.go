package pidfile

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/internal/proc"
)

// pidFile writes a PID file for pid in a fresh safe directory.
func pidFile(t *testing.T, pid int) string {
	t.Helper()
	path := filepath.Join(safeDir(t), "daemon.pid")
	if _, err := Write(path, pid, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func inspect(t *testing.T, path string, want State) *Info {
	t.Helper()
	info, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != want {
		t.Fatalf("Inspect = %v (%s), want %v", info.State, info.Reason, want)
	}
	if info.Reason == "" {
		t.Error("no Reason")
	}
	return info
}

// refused checks that Process refuses with an error matching want.
func refused(t *testing.T, info *Info, exe string, want error) {
	t.Helper()
	p, err := info.Process(exe)
	if err == nil {
		p.Close()
		t.Fatalf("Process(%q) returned a handle on pid %d", exe, info.PID)
	}
	if want != nil && !errors.Is(err, want) {
		t.Fatalf("Process(%q) = %v, want an error matching %v", exe, err, want)
	}
}

func TestInspectRunning(t *testing.T) {
	victim := startVictim(t)
	pid := victim.Process.Pid
	info := inspect(t, pidFile(t, pid), Running)
	st, err := proc.ReadStat(pid)
	if err != nil || info.PID != pid || info.StartTicks != st.StartTicks {
		t.Fatalf("Inspect = %+v; want pid %d start %d (%v)", info, pid, st.StartTicks, err)
	}
	p, err := info.Process("")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := unsignalled(pid); err != nil {
		t.Fatalf("Process alone signalled: %v", err)
	}
	if err := p.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if pending(pid)&(1<<(syscall.SIGUSR1-1)) == 0 {
		t.Errorf("SIGUSR1 sent through Process is not pending at pid %d", pid)
	}
}

func TestInspectDead(t *testing.T) {
	cmd := helperCmd("exit")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	info := inspect(t, pidFile(t, cmd.Process.Pid), Dead)
	refused(t, info, "", ErrStale)
}

func TestInspectZombie(t *testing.T) {
	cmd := helperCmd("exit")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	pid := cmd.Process.Pid
	if !waitUntil(func() bool { st, err := proc.ReadStat(pid); return err == nil && st.Zombie() }) {
		t.Fatalf("child %d never became a zombie", pid)
	}
	info := inspect(t, pidFile(t, pid), Zombie)
	refused(t, info, "", ErrStale)
	if err := MatchesExec(pid, os.Args[0]); !errors.Is(err, ErrExecMismatch) {
		t.Errorf("MatchesExec(zombie) = %v, want ErrExecMismatch", err)
	}
}

func TestInspectReused(t *testing.T) {
	victim := startVictim(t)
	pid := victim.Process.Pid
	path := pidFile(t, pid)
	hourAgo := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, hourAgo, hourAgo); err != nil {
		t.Fatal(err)
	}
	info := inspect(t, path, Reused)
	var se *StateError
	p, err := info.Process("")
	if !errors.As(err, &se) || !errors.Is(err, ErrStale) || se.State != Reused || se.PID != pid {
		if p != nil {
			p.Close()
		}
		t.Fatalf("Process = %v, want a *StateError for Reused matching ErrStale", err)
	}
	// A forged State does not get past the re-check either.
	info.State = Running
	refused(t, info, "", ErrStale)
	if err := unsignalled(pid); err != nil {
		t.Error(err)
	}
}

func TestInspectFutureMtime(t *testing.T) {
	victim := startVictim(t)
	path := pidFile(t, victim.Process.Pid)
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	info := inspect(t, path, Unknown)
	if !strings.Contains(info.Reason, "future") {
		t.Errorf("Reason %q", info.Reason)
	}
	refused(t, info, "", ErrUnverified)
	if err := unsignalled(victim.Process.Pid); err != nil {
		t.Error(err)
	}
}

func TestInspectThread(t *testing.T) {
	// A goroutine locked to a thread other than the main one keeps a TID
	// that is not a process ID alive for the test.
	tids := make(chan int)
	stop := make(chan struct{})
	defer close(stop)
	for range 2 {
		go func() {
			runtime.LockOSThread()
			tids <- unix.Gettid()
			<-stop
		}()
	}
	tid := <-tids
	if tid == os.Getpid() {
		tid = <-tids
	} else {
		go func() { <-tids }()
	}
	info := inspect(t, pidFile(t, tid), Unknown)
	if !strings.Contains(info.Reason, "thread") {
		t.Errorf("Reason %q", info.Reason)
	}
	refused(t, info, "", ErrUnverified)
}

func TestInspectSelf(t *testing.T) {
	info := inspect(t, pidFile(t, os.Getpid()), Running)
	refused(t, info, "", nil)
}

func TestProcessFileChanged(t *testing.T) {
	victim := startVictim(t)
	pid := victim.Process.Pid
	tests := []struct {
		name   string
		change func(t *testing.T, path string)
	}{
		{"rewritten", func(t *testing.T, path string) {
			if _, err := Write(path, pid, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"other pid", func(t *testing.T, path string) {
			// By another writer: Write itself refuses to replace a file
			// that names a live process.
			writeFile(t, path+".new", strconv.Itoa(os.Getppid())+"\n", 0o644)
			if err := os.Rename(path+".new", path); err != nil {
				t.Fatal(err)
			}
		}},
		{"removed", func(t *testing.T, path string) { os.Remove(path) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := pidFile(t, pid)
			info := inspect(t, path, Running)
			tt.change(t, path)
			refused(t, info, "", ErrChanged)
		})
	}
	if err := unsignalled(pid); err != nil {
		t.Error(err)
	}
}

func TestProcessGone(t *testing.T) {
	victim := startVictim(t)
	info := inspect(t, pidFile(t, victim.Process.Pid), Running)
	victim.Process.Kill()
	victim.Wait()
	p, err := info.Process("")
	if !errors.Is(err, proc.ErrGone) && !errors.Is(err, proc.ErrChanged) {
		if p != nil {
			p.Close()
		}
		t.Fatalf("Process after exit = %v, want proc.ErrGone", err)
	}
}

func TestProcessExec(t *testing.T) {
	victim := startVictim(t)
	sleep, _ := exec.LookPath("sleep")
	info := inspect(t, pidFile(t, victim.Process.Pid), Running)
	p, err := info.Process(sleep)
	if err != nil {
		t.Fatalf("Process(%q): %v", sleep, err)
	}
	p.Close()
	refused(t, info, os.Args[0], ErrExecMismatch)
	if err := unsignalled(victim.Process.Pid); err != nil {
		t.Error(err)
	}
}

func TestClassify(t *testing.T) {
	const boot = 1000.0 // seconds since boot, now
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	ticks := func(sinceBoot float64) uint64 { return uint64(sinceBoot * proc.ClockTicks) }
	tests := []struct {
		name    string
		started float64       // seconds since boot
		age     time.Duration // of the file, by the wall clock
		want    State
	}{
		{"started long before the write", 10, 100 * time.Second, Running},
		{"started just before the write", 899.99, 100 * time.Second, Running},
		{"started within the slack after", 900.01, 100 * time.Second, Running},
		{"started well after the write", 901, 100 * time.Second, Reused},
		{"started an hour after", 999, time.Hour, Reused},
		{"file from before this boot", 0, 2000 * time.Second, Reused},
		{"file written just now", 999.99, 0, Running},
		{"mtime a hair in the future", 500, -5 * time.Millisecond, Running},
		{"mtime in the future", 500, -time.Minute, Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := classify(ticks(tt.started), now.Add(-tt.age), now, boot)
			if got != tt.want || reason == "" {
				t.Errorf("classify(start %.2fs, age %v) = %v %q, want %v", tt.started, tt.age, got, reason, tt.want)
			}
		})
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Unknown: "unknown", Running: "running", Dead: "dead",
		Zombie: "zombie", Reused: "reused", State(9): "State(9)", State(-1): "State(-1)"} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", int(s), got, want)
		}
	}
	_ = strconv.Itoa
}
