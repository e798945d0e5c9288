package job

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/guardtest"
)

// Tests written against mutants of this package that the other tests let
// live: each pins a promise of the package doc that a small slip breaks.

// The test binary doubles as two more helpers (see TestMain for the first):
//   - GUARD_JOB_TEST_TERMS=FILE: a program that appends a line to FILE for
//     each SIGTERM it handles and, on the first, exits 0 after a grace
//     period: what a daemon does that takes a second SIGTERM as "force".
//   - GUARD_JOB_TEST_SUPERVISE=SCRIPT: a supervisor with Leftovers Wait whose
//     SIGTERM reaches the job through Spec.Signals, as guard run's does.
func init() {
	if f := os.Getenv("GUARD_JOB_TEST_TERMS"); f != "" {
		os.Exit(countTerms(f))
	}
	if script := os.Getenv("GUARD_JOB_TEST_SUPERVISE"); script != "" {
		os.Exit(superviseWithSignals(script))
	}
}

// termGrace is how long the TERM-counting helper lingers after the first
// SIGTERM. A copy sent after it exits is not counted, so it only bounds how
// likely a double TERM is caught; a single TERM passes however short it is.
const termGrace = 300 * time.Millisecond

func countTerms(file string) int {
	c := make(chan os.Signal, 8)
	signal.Notify(c, syscall.SIGTERM)
	if err := os.WriteFile(file+".ready", nil, 0o644); err != nil {
		return 70
	}
	<-c
	grace := time.After(termGrace)
	n := 1
	for {
		select {
		case <-c:
			n++
		case <-grace:
			if err := os.WriteFile(file, []byte(strconv.Itoa(n)+"\n"), 0o644); err != nil {
				return 70
			}
			return 0
		}
	}
}

func superviseWithSignals(script string) int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM)
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	j, err := Start(context.Background(), Spec{Cmd: cmd, Signals: sigs, Leftovers: Wait, KillAfter: time.Minute})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 70
	}
	return j.Wait().Status.ExitCode()
}

// Stop sends one SIGTERM to the main process, through its group, never a
// second one through the tree scan (skipped for group members while the
// main process runs): a program may read a second SIGTERM as "force". A
// double TERM is caught only when the program handles the first before
// the second arrives (the scan of /proc between them makes that likely), so
// the test tries a few times; one TERM always passes.
func TestStopSendsOneTermToTheGroup(t *testing.T) {
	for i := range 5 {
		dir := t.TempDir()
		count := filepath.Join(dir, "terms")
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "GUARD_JOB_TEST_TERMS="+count)
		cmd.Stderr = os.Stderr
		j, err := Start(context.Background(), Spec{Cmd: cmd, KillAfter: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { j.Kill(nil); <-j.Done() })
		guardtest.Eventually(t, "the helper to be ready", func() bool { _, err := os.Stat(count + ".ready"); return err == nil })
		j.Stop(errors.New("test stop"))
		if res := wait(t, j); res.Status.ExitCode() != 0 || res.Killed {
			t.Fatalf("try %d: result %+v: want a clean exit on SIGTERM", i, res)
		}
		b, err := os.ReadFile(count)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.TrimSpace(string(b)); n != "1" {
			t.Fatalf("try %d: the main process got %s SIGTERMs from one Stop, want 1", i, n)
		}
	}
}

// Once the main process is reaped, its PID and so its process group ID may
// name other processes: Stop then signals the remaining processes one by
// one, never the group. Here a process that is no part of the job (a child
// of the test, not of the supervisor) joined the main process's group
// before the main process ended; the supervisor's Stop must not reach it.
func TestStopAfterMainReapedSparesItsGroup(t *testing.T) {
	dir := t.TempDir()
	script := `echo $$ >"$D/main"
setsid sh -c 'trap "exit 0" TERM; touch "$D/left"; while :; do sleep 0.05; done' &
while [ ! -e "$D/left" ] || [ ! -e "$D/joined" ]; do sleep 0.01; done
exit 0`
	sup := exec.Command(os.Args[0], "-test.run=^$")
	sup.Env = append(os.Environ(), "GUARD_JOB_TEST_SUPERVISE="+script, "D="+dir)
	sup.Stderr = os.Stderr
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	supDone := make(chan struct{})
	go func() { sup.Wait(); close(supDone) }()
	t.Cleanup(func() { sup.Process.Kill(); <-supDone })
	mainPID := pidFrom(t, filepath.Join(dir, "main"))

	// The bystander: in the main process's group, outside the job's tree.
	by := exec.Command("sleep", "300")
	by.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: mainPID}
	if err := by.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { by.Process.Kill(); by.Wait() })
	if err := os.WriteFile(filepath.Join(dir, "joined"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Reaped, not just ended: its PID is gone from /proc (it cannot be
	// reused while the bystander keeps its group).
	guardtest.Eventually(t, "the job's main process to be reaped", func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", mainPID))
		return errors.Is(err, os.ErrNotExist)
	})

	sup.Process.Signal(syscall.SIGTERM)
	select {
	case <-supDone:
	case <-time.After(waitLimit):
		t.Fatal("the supervisor did not end")
	}
	if code := sup.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("supervisor exit %d, want the main process's 0", code)
	}
	// Every signal the supervisor sent was sent before it exited: a SIGTERM
	// that reached the bystander has killed it or is pending in it.
	if !running(by.Process.Pid) || signalsPending(t, by.Process.Pid) {
		t.Fatal("Stop signalled the reaped main process's group: it reached a process outside the job")
	}
}

// signalsPending reports whether pid has any signal pending (a fatal one
// shows as a pending SIGKILL until the process is gone).
func signalsPending(t *testing.T, pid int) bool {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && (k == "SigPnd" || k == "ShdPnd") && strings.Trim(strings.TrimSpace(v), "0") != "" {
			return true
		}
	}
	return false
}

// Stop and Kill keep going until every process is gone, whatever the
// Leftovers policy: with Ignore, a stopped job is not over when its main
// process ends, while a process of its tree still shuts down.
func TestStopWithIgnoreWaitsForTheTree(t *testing.T) {
	dir := t.TempDir()
	sigs := make(chan os.Signal, 1)
	told := make(chan error, 1)
	j := sh(t, Spec{Leftovers: Ignore, Signals: sigs, KillAfter: time.Minute,
		OnSignal: func(_ os.Signal, err error) { told <- err }}, dir,
		`setsid sh -c 'trap "" USR1; trap "while [ ! -e \"\$D/go\" ]; do sleep 0.01; done; touch \"\$D/worker-done\"; exit 0" TERM; touch "$D/ready"; while :; do sleep 0.05; done' &
trap 'exit 0' TERM
while [ ! -e "$D/ready" ]; do sleep 0.01; done
while :; do sleep 0.05; done`)
	guardtest.Eventually(t, "the worker", func() bool { _, err := os.Stat(filepath.Join(dir, "ready")); return err == nil })
	j.Stop(errors.New("test stop"))
	select {
	case <-j.Exited():
	case <-time.After(waitLimit):
		t.Fatal("the main process did not end on SIGTERM")
	}
	// The job's loop still runs if it answers a signal.
	sigs <- syscall.SIGUSR1
	select {
	case <-told:
	case <-j.Done():
		t.Fatal("the stopped job was over when its main process ended, while its worker still ran")
	case <-time.After(waitLimit):
		t.Fatal("no answer to a forwarded signal")
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res := wait(t, j)
	if _, err := os.Stat(filepath.Join(dir, "worker-done")); err != nil {
		t.Fatal("the job was over before its worker finished")
	}
	if !res.Stopped || res.Killed {
		t.Fatalf("result %+v: want stopped, not killed", res)
	}
}

// Kill keeps sending SIGKILL to processes forked after it scanned the tree:
// a setsid'ed process that forks without pause leaves children nobody
// listed when it died; the job is over only once they are killed too.
func TestKillSweepsLateForks(t *testing.T) {
	dir := t.TempDir()
	j := sh(t, Spec{}, dir, `setsid sh -c 'echo $$ >"$D/forker"; while :; do sleep 300 & done' &
while :; do sleep 0.05; done`)
	forker := pidFrom(t, filepath.Join(dir, "forker"))
	// Whatever outlives a broken Kill is in the forker's group.
	t.Cleanup(func() {
		select {
		case <-j.Done():
		default:
			syscall.Kill(-forker, syscall.SIGKILL)
		}
	})
	guardtest.Eventually(t, "the forker's children", func() bool {
		n := 0
		for _, m := range descendants() {
			if m.pgid == forker {
				n++
			}
		}
		return n > 20
	})
	j.Kill(errors.New("test kill"))
	select {
	case <-j.Done():
	case <-time.After(waitLimit):
		t.Fatalf("Kill did not end the tree within %v: processes forked after its scan were never killed", waitLimit)
	}
}

// With Kill, what the main process left behind gets SIGTERM first, and a
// chance to shut down cleanly before any SIGKILL.
func TestLeftoversGetTermFirst(t *testing.T) {
	dir := t.TempDir()
	j := sh(t, Spec{KillAfter: time.Hour}, dir,
		`setsid sh -c 'trap "touch \"\$D/termed\"; exit 0" TERM; touch "$D/ready"; while :; do sleep 0.05; done' &
while [ ! -e "$D/ready" ]; do sleep 0.01; done; exit 0`)
	res := wait(t, j)
	if _, err := os.Stat(filepath.Join(dir, "termed")); err != nil {
		t.Fatal("the process left behind did not get SIGTERM")
	}
	if res.Killed || res.Leftovers < 1 {
		t.Fatalf("result %+v: want leftovers, stopped without SIGKILL", res)
	}
}
