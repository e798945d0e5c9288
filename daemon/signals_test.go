//go:build linux

package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/guardtest"
)

// runControl runs c with test-driven (unbuffered) signal channels: a send completes once
// Run has taken the signal (but maybe before it has acted on it). barrier returns once Run
// has finished acting on every signal sent before: Run handles one at a time, and takes
// the barrier's SIGUSR1 only after the previous one.
func runControl(c *Control, serve func(context.Context) error) (hup, stop chan os.Signal, barrier func(), done chan error) {
	hup, stop, done = make(chan os.Signal), make(chan os.Signal), make(chan error, 1)
	usr1 := make(chan os.Signal)
	go func() { done <- c.Run(context.Background(), &Signals{HUP: hup, Stop: stop, USR1: usr1}, serve) }()
	return hup, stop, func() { usr1 <- syscall.SIGUSR1 }, done
}

func recv[T any](t *testing.T, what string, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(waitFor):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestReloadDeferredUntilReadyAndCoalesced(t *testing.T) {
	t.Setenv(NotifySocketEnv, "")
	var inflight, overlaps, early, calls atomic.Int64
	var ready atomic.Bool
	started, release := make(chan struct{}, 10), make(chan struct{})
	c := &Control{Logger: discardLogger(), Reload: func(context.Context) error {
		if inflight.Add(1) > 1 {
			overlaps.Add(1)
		}
		defer inflight.Add(-1)
		if !ready.Load() {
			early.Add(1)
		}
		calls.Add(1)
		started <- struct{}{}
		<-release
		return nil
	}}
	goReady := make(chan struct{})
	hup, stop, barrier, done := runControl(c, func(ctx context.Context) error {
		<-goReady
		ready.Store(true)
		c.Ready()
		<-ctx.Done()
		return nil
	})
	hup <- syscall.SIGHUP // during start-up: kept until Ready
	hup <- syscall.SIGHUP // coalesces with it
	barrier()
	close(goReady)
	recv(t, "the deferred reload", started)
	for range 5 {
		hup <- syscall.SIGHUP // during the reload: together one more reload
	}
	barrier()
	release <- struct{}{}
	recv(t, "the coalesced reload", started)
	release <- struct{}{}
	stop <- syscall.SIGTERM
	if err := recv(t, "Run to return", done); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if calls.Load() != 2 || overlaps.Load() != 0 || early.Load() != 0 {
		t.Errorf("calls %d overlaps %d early %d; want 2, 0, 0", calls.Load(), overlaps.Load(), early.Load())
	}
	if s := c.ReloadStats(); s.Total != 2 || s.Failed != 0 {
		t.Errorf("ReloadStats = %+v", s)
	}
}

func TestStopTimeoutAndForcedExit(t *testing.T) {
	t.Setenv(NotifySocketEnv, "")
	wedged := func(ctx context.Context) error { <-ctx.Done(); select {} }

	c := &Control{Logger: discardLogger(), StopTimeout: 50 * time.Millisecond}
	_, stop, _, done := runControl(c, wedged)
	stop <- syscall.SIGTERM
	if err := recv(t, "Run to give up", done); !errors.Is(err, ErrStopTimeout) {
		t.Errorf("Run = %v, want ErrStopTimeout", err)
	}

	codes := make(chan int, 1)
	c = &Control{Logger: discardLogger(), StopTimeout: time.Hour, ForceExit: func(code int) { codes <- code }}
	_, stop, _, _ = runControl(c, wedged)
	stop <- syscall.SIGTERM
	stop <- syscall.SIGINT
	if code := recv(t, "ForceExit", codes); code != 130 {
		t.Errorf("forced exit code %d, want 130 (128+SIGINT)", code)
	}
}

// startReloadHelper starts the reload helper and waits until it serves.
func startReloadHelper(t *testing.T) (cmd *exec.Cmd, dir string, stdout *bytes.Buffer) {
	t.Helper()
	dir = t.TempDir()
	cmd = helperCmd(t, "reload", "HELPER_DIR="+dir)
	stdout = new(bytes.Buffer)
	cmd.Stdout = stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	guardtest.Eventually(t, "the helper to start", func() bool { return reloadStatus(dir).Started })
	return cmd, dir, stdout
}

func reloadStatus(dir string) (r reloadReport) {
	readJSON(filepath.Join(dir, "status.json"), &r)
	return r
}

// stopReloadHelper sends SIGTERM and returns the helper's final report.
func stopReloadHelper(t *testing.T, cmd *exec.Cmd, stdout *bytes.Buffer) reloadReport {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, cmd.Wait()); code != 0 {
		t.Fatalf("helper exit code %d after SIGTERM, want 0", code)
	}
	var r reloadReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("helper report %q: %v", stdout, err)
	}
	return r
}

func setGen(t *testing.T, dir, gen string) {
	t.Helper()
	if err := writeFileAtomic(filepath.Join(dir, "gen"), []byte(gen)); err != nil {
		t.Fatal(err)
	}
}

func TestHundredHUPsReloadSerially(t *testing.T) {
	cmd, dir, stdout := startReloadHelper(t)
	setGen(t, dir, "gen-0")
	cmd.Process.Signal(syscall.SIGHUP) // before ready: deferred
	guardtest.Eventually(t, "the helper to see the early SIGHUP", func() bool { return reloadStatus(dir).HUPsSeen == 1 })
	if err := os.WriteFile(filepath.Join(dir, "go-ready"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	guardtest.Eventually(t, "the deferred reload", func() bool { return reloadStatus(dir).Config == "gen-0" })

	for i := 1; i <= 100; i++ {
		setGen(t, dir, fmt.Sprintf("gen-%d", i))
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// No SIGHUP is lost: a reload starts after the last one and reads the last config.
	guardtest.Eventually(t, "a reload of gen-100", func() bool { return reloadStatus(dir).Config == "gen-100" })
	r := stopReloadHelper(t, cmd, stdout)
	if r.Overlaps != 0 || r.Early != 0 {
		t.Errorf("%d reloads overlapped, %d ran before ready; want none", r.Overlaps, r.Early)
	}
	if uint64(r.Calls) != r.Total || r.Failed != 0 || r.Total < 2 || r.Total > 101 || r.LastSuccess.IsZero() {
		t.Errorf("report %+v: want Total = Calls in [2, 101], no failures, a last success", r)
	}
	t.Logf("101 SIGHUPs, %d reloads", r.Total)
}

func TestFailedReloadKeepsRunning(t *testing.T) {
	cmd, dir, stdout := startReloadHelper(t)
	if err := os.WriteFile(filepath.Join(dir, "go-ready"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	guardtest.Eventually(t, "the helper to be ready", func() bool { return reloadStatus(dir).Ready })
	setGen(t, dir, "good-1")
	cmd.Process.Signal(syscall.SIGHUP)
	guardtest.Eventually(t, "reload of good-1", func() bool { return reloadStatus(dir).Config == "good-1" })
	setGen(t, dir, "fail-2")
	cmd.Process.Signal(syscall.SIGHUP)
	guardtest.Eventually(t, "the failing reload", func() bool { return reloadStatus(dir).LastGen == "fail-2" })
	cmd.Process.Signal(syscall.SIGUSR1)
	guardtest.Eventually(t, "the reopen on SIGUSR1", func() bool { return reloadStatus(dir).Reopens == 1 })
	setGen(t, dir, "good-3")
	cmd.Process.Signal(syscall.SIGHUP)
	guardtest.Eventually(t, "reload of good-3", func() bool { return reloadStatus(dir).Config == "good-3" })
	r := stopReloadHelper(t, cmd, stdout)
	if r.Total != 3 || r.Failed != 1 || uint64(r.Calls) != r.Total {
		t.Errorf("report %+v: want 3 reloads, 1 failed", r)
	}
}

func TestSecondStopSignalForcesExit(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			cmd := helperCmd(t, "stop", "HELPER_DIR="+dir, "HELPER_STOP_TIMEOUT=1h")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			exists := func(name string) func() bool {
				return func() bool { _, err := os.Stat(filepath.Join(dir, name)); return err == nil }
			}
			guardtest.Eventually(t, "the helper to start", exists("started"))
			cmd.Process.Signal(sig)
			guardtest.Eventually(t, "the graceful stop to begin", exists("stopping"))
			cmd.Process.Signal(sig)
			if code, want := exitCode(t, cmd.Wait()), 128+int(sig); code != want {
				t.Errorf("exit code %d after a second %v, want %d", code, sig, want)
			}
		})
	}
}
