package proc

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// startSleep starts "sleep 3600" as a child that the test reaps; it is
// killed at cleanup if still running.
func startSleep(t *testing.T) (*exec.Cmd, Stat) {
	t.Helper()
	path, err := exec.LookPath("sleep")
	if err != nil {
		t.Skipf("sleep(1) not found: %v", err)
	}
	cmd := exec.Command(path, "3600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Both are no-ops once the test has reaped it: os.Process
		// remembers that it finished and never signals a reused PID.
		cmd.Process.Kill()
		cmd.Wait()
	})
	st, err := ReadStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return cmd, st
}

// reap waits for cmd and returns how it ended.
func reap(t *testing.T, cmd *exec.Cmd) *os.ProcessState {
	t.Helper()
	cmd.Wait()
	return cmd.ProcessState
}

func TestOpenSignal(t *testing.T) {
	cmd, st := startSleep(t)
	p, err := Open(cmd.Process.Pid, st.StartTicks)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.PID != cmd.Process.Pid || p.StartTicks != st.StartTicks {
		t.Errorf("Open = %+v, want pid %d start %d", p, cmd.Process.Pid, st.StartTicks)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ps := reap(t, cmd)
	if ws := ps.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("child ended with %v, want SIGTERM", ps)
	}
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, ErrGone) {
		t.Errorf("Signal after reap = %v, want ErrGone", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := p.Signal(syscall.SIGTERM); err == nil {
		t.Error("Signal after Close succeeded")
	}
	if err := p.Wait(context.Background()); err == nil {
		t.Error("Wait after Close succeeded")
	}
}

func TestOpenWrongStart(t *testing.T) {
	cmd, st := startSleep(t)
	for _, ticks := range []uint64{0, st.StartTicks - 1, st.StartTicks + 1} {
		p, err := Open(cmd.Process.Pid, ticks)
		if !errors.Is(err, ErrChanged) {
			if p != nil {
				p.Close()
			}
			t.Errorf("Open(pid, %d) with real start %d = %v, want ErrChanged", ticks, st.StartTicks, err)
		}
	}
}

func TestOpenGone(t *testing.T) {
	cmd, st := startSleep(t)
	cmd.Process.Kill()
	reap(t, cmd)
	p, err := Open(cmd.Process.Pid, st.StartTicks)
	if !errors.Is(err, ErrGone) && !errors.Is(err, ErrChanged) { // ErrChanged: the PID was taken again
		if p != nil {
			p.Close()
		}
		t.Errorf("Open(reaped child) = %v, want ErrGone", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	self, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	init, _ := ReadStat(1) // may fail in odd sandboxes; PID 1 is refused before any lookup
	tests := []struct {
		name  string
		pid   int
		ticks uint64
	}{
		{"init", 1, init.StartTicks},
		{"self", os.Getpid(), self.StartTicks},
		{"zero (own process group)", 0, 0},
		{"minus one (every process)", -1, 0},
		{"negative (a process group)", -os.Getpid(), self.StartTicks},
		{"pid_max", PIDMax(), 0},
		{"wrapped 32-bit -1", 1<<32 - 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Open(tt.pid, tt.ticks)
			if err == nil {
				p.Close()
				t.Fatalf("Open(%d) succeeded", tt.pid)
			}
		})
	}
}

func TestWaitReturnsWhileZombie(t *testing.T) {
	cmd, st := startSleep(t)
	p, err := Open(cmd.Process.Pid, st.StartTicks)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait(cancelled) on a live process = %v, want context.Canceled", err)
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	// Not reaped yet: it must still be there as a zombie.
	now, err := ReadStat(cmd.Process.Pid)
	if err != nil || !now.Zombie() || now.StartTicks != st.StartTicks {
		t.Errorf("after Wait, before reaping: %+v, %v; want the same process as a zombie", now, err)
	}
	// Open still works on the zombie (same start time), and Wait returns.
	z, err := Open(cmd.Process.Pid, st.StartTicks)
	if err != nil {
		t.Fatalf("Open(zombie): %v", err)
	}
	defer z.Close()
	if err := z.Wait(ctx); err != nil {
		t.Errorf("Wait on zombie: %v", err)
	}
	reap(t, cmd)
}
