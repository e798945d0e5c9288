package job

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/guardtest"
)

// A job that leaves processes behind, however they detach (background,
// setsid, double fork), is over only once they are gone; with Kill they are
// stopped.
func TestLeftoversKilled(t *testing.T) {
	for name, bg := range map[string]string{
		"background":  `sleep 300 & echo $! >"$D/pid"`,
		"setsid":      `setsid sh -c 'echo $$ >"$D/pid"; exec sleep 300' &`,
		"double fork": `(sh -c 'echo $$ >"$D/pid"; exec sleep 300' &) &`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			j := sh(t, Spec{KillAfter: 5 * time.Second}, dir, bg+`
while [ ! -s "$D/pid" ]; do sleep 0.01; done; exit 3`)
			res := wait(t, j)
			pid := pidFrom(t, filepath.Join(dir, "pid"))
			if running(pid) {
				t.Fatalf("left-behind PID %d still runs after the job ended", pid)
			}
			if res.Status.ExitCode() != 3 || res.Leftovers < 1 || res.Cause != nil || res.Stopped {
				t.Fatalf("result %+v: want exit 3, leftovers >= 1, no cause", res)
			}
		})
	}
}

// With Wait the job lasts until its last process ends by itself.
func TestLeftoversWaited(t *testing.T) {
	dir := t.TempDir()
	j := sh(t, Spec{Leftovers: Wait}, dir, `(sleep 0.3; touch "$D/late") & exit 0`)
	wait(t, j)
	if _, err := os.Stat(filepath.Join(dir, "late")); err != nil {
		t.Fatal("the job was over before the process it left behind ended")
	}
}

// With Ignore the job is over with its main process; the rest runs on.
func TestLeftoversIgnored(t *testing.T) {
	dir := t.TempDir()
	j := sh(t, Spec{Leftovers: Ignore}, dir, `sleep 300 & echo $! >"$D/pid"; exit 0`)
	wait(t, j)
	pid := pidFrom(t, filepath.Join(dir, "pid"))
	killLater(t, pid)
	if !running(pid) {
		t.Fatal("with Ignore, the left-behind process was stopped")
	}
}

// Stop ends only once every process is gone: a wrapper shell that dies at
// once on SIGTERM while its worker (in another session) shuts down slowly.
func TestStopWaitsForSlowWorker(t *testing.T) {
	dir := t.TempDir()
	worker := `trap 'sleep 0.5; touch "$D/worker-done"; exit 0' TERM; touch "$D/ready"; while :; do sleep 0.05; done`
	if err := os.WriteFile(filepath.Join(dir, "worker"), []byte(worker), 0o644); err != nil {
		t.Fatal(err)
	}
	j := sh(t, Spec{KillAfter: 20 * time.Second}, dir, `setsid sh "$D/worker" & while [ ! -e "$D/ready" ]; do sleep 0.01; done; sleep 300`)
	guardtest.Eventually(t, "the worker", func() bool { _, err := os.Stat(filepath.Join(dir, "ready")); return err == nil })
	cause := errors.New("test stop")
	j.Stop(cause)
	res := wait(t, j)
	if _, err := os.Stat(filepath.Join(dir, "worker-done")); err != nil {
		t.Fatal("the job was over before its worker finished shutting down")
	}
	if res.Cause != cause || !res.Stopped || res.Killed || res.Status.Signal != syscall.SIGTERM {
		t.Fatalf("result %+v: want stopped by SIGTERM with the cause", res)
	}
}

// A tree that ignores SIGTERM is killed KillAfter later, all of it.
func TestStopEscalatesToKill(t *testing.T) {
	dir := t.TempDir()
	j := sh(t, Spec{KillAfter: 200 * time.Millisecond}, dir,
		`trap '' TERM; setsid sh -c 'trap "" TERM; echo $$ >"$D/pid"; while :; do sleep 0.05; done' & while :; do sleep 0.05; done`)
	pid := pidFrom(t, filepath.Join(dir, "pid"))
	j.Stop(errors.New("stop"))
	res := wait(t, j)
	if !res.Killed || res.Status.Signal != syscall.SIGKILL || running(pid) {
		t.Fatalf("result %+v, worker running %v: want everything killed", res, running(pid))
	}
}

// SIGTERM from the caller's channel stops the tree; a second one kills it.
func TestSignalsStopThenKill(t *testing.T) {
	dir := t.TempDir()
	sigs := make(chan os.Signal, 2)
	told := make(chan os.Signal, 2)
	j := sh(t, Spec{Signals: sigs, KillAfter: time.Hour, OnSignal: func(s os.Signal, _ error) { told <- s }}, dir,
		`trap '' TERM; touch "$D/ready"; while :; do sleep 0.05; done`)
	guardtest.Eventually(t, "the job", func() bool { _, err := os.Stat(filepath.Join(dir, "ready")); return err == nil })
	sigs <- syscall.SIGTERM
	select {
	case <-j.Done():
		t.Fatal("a job that ignores SIGTERM ended on the first one")
	case <-time.After(200 * time.Millisecond):
	}
	sigs <- syscall.SIGINT
	res := wait(t, j)
	if s, ok := Signal(res.Cause); !ok || s != syscall.SIGTERM || !res.Killed {
		t.Fatalf("result %+v: want killed, cause SIGTERM", res)
	}
	// OnSignal hears of both (guard says STOPPING=1 to systemd there).
	var got []os.Signal
	for len(got) < 2 {
		select {
		case s := <-told:
			got = append(got, s)
		case <-time.After(waitLimit):
			t.Fatalf("OnSignal heard of %v only; want SIGTERM, SIGINT", got)
		}
	}
	if got[0] != syscall.SIGTERM || got[1] != syscall.SIGINT {
		t.Fatalf("OnSignal got %v; want SIGTERM, SIGINT", got)
	}
}

// HUP, QUIT, USR1 and USR2 reach the job's processes, then OnSignal runs.
func TestForwardedSignals(t *testing.T) {
	dir := t.TempDir()
	sigs := make(chan os.Signal, 4)
	got := make(chan os.Signal, 4)
	script := `for s in HUP QUIT USR1 USR2; do trap "echo $s >>\"\$D/got\"" $s; done; touch "$D/ready"; while :; do sleep 0.05; done`
	j := sh(t, Spec{Signals: sigs, OnSignal: func(s os.Signal, err error) {
		if err != nil {
			t.Errorf("forward %v: %v", s, err)
		}
		got <- s
	}}, dir, script)
	guardtest.Eventually(t, "the job", func() bool { _, err := os.Stat(filepath.Join(dir, "ready")); return err == nil })
	for _, s := range []os.Signal{syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2} {
		sigs <- s
		<-got
	}
	guardtest.Eventually(t, "all four signals in the job", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "got"))
		return strings.Count(string(b), "\n") == 4
	})
	b, _ := os.ReadFile(filepath.Join(dir, "got"))
	if string(b) != "HUP\nQUIT\nUSR1\nUSR2\n" {
		t.Fatalf("job saw %q", b)
	}
	j.Stop(nil)
	wait(t, j)
}

// A process left behind still gets forwarded signals once the main process
// is gone (one by one, never through the reaped main process's group).
func TestForwardAfterMainEnded(t *testing.T) {
	dir := t.TempDir()
	sigs := make(chan os.Signal, 1)
	done := make(chan error, 1)
	j := sh(t, Spec{Signals: sigs, Leftovers: Wait, OnSignal: func(_ os.Signal, err error) { done <- err }}, dir,
		`setsid sh -c 'trap "touch \"\$D/hup\"; exit 0" HUP; touch "$D/ready"; while :; do sleep 0.05; done' & while [ ! -e "$D/ready" ]; do sleep 0.01; done; exit 0`)
	select {
	case <-j.Exited():
	case <-time.After(waitLimit):
		t.Fatal("the main process did not end")
	}
	sigs <- syscall.SIGHUP
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wait(t, j)
	if _, err := os.Stat(filepath.Join(dir, "hup")); err != nil {
		t.Fatal("the process left behind did not get SIGHUP")
	}
}

func TestStartError(t *testing.T) {
	_, err := Start(t.Context(), Spec{Cmd: exec.Command(filepath.Join(t.TempDir(), "missing"))})
	if err == nil {
		t.Fatal("Start of a missing program: no error")
	}
}

// The context's cause stops the job and becomes the result's cause.
func TestContextStops(t *testing.T) {
	ctx, cancel := contextWithCause()
	cmd := exec.Command("sleep", "300")
	j, err := Start(ctx, Spec{Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	cause := errors.New("shutting down")
	cancel(cause)
	if res := wait(t, j); res.Cause != cause || res.Status.Signal != syscall.SIGTERM {
		t.Fatalf("result %+v", res)
	}
}

func TestParsePolicy(t *testing.T) {
	for _, p := range []Policy{Kill, Wait, Ignore} {
		if got, err := ParsePolicy(p.String()); err != nil || got != p {
			t.Errorf("ParsePolicy(%q) = %v, %v", p.String(), got, err)
		}
	}
	if _, err := ParsePolicy("keep"); err == nil {
		t.Error(`ParsePolicy("keep"): no error`)
	}
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

// Job.Signal forwards like a received signal, and SIGTERM through it stops
// the tree with the KILL timer armed.
func TestJobSignal(t *testing.T) {
	dir := t.TempDir()
	j := sh(t, Spec{KillAfter: 200 * time.Millisecond}, dir,
		`trap 'echo HUP >>"$D/got"' HUP; trap '' TERM; touch "$D/ready"; while :; do sleep 0.05; done`)
	guardtest.Eventually(t, "the job", func() bool { _, err := os.Stat(filepath.Join(dir, "ready")); return err == nil })
	if err := j.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	guardtest.Eventually(t, "SIGHUP in the job", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "got"))
		return string(b) == "HUP\n"
	})
	if err := j.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if res := wait(t, j); !res.Killed || res.Status.Signal != syscall.SIGKILL {
		t.Fatalf("result %+v: a job ignoring SIGTERM sent through Signal must be killed after KillAfter", res)
	}
	if err := j.Signal(syscall.SIGHUP); !errors.Is(err, ErrDone) {
		t.Fatalf("Signal after the end: %v, want ErrDone", err)
	}
}

// With PIDNamespace the command runs under the namespace's init (this test
// binary re-executed, RunInit), keeps its exit status, and what it leaves
// is stopped by the init as Kill says.
func TestPIDNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		guardtest.Missing(t, "a PID namespace needs root")
	}
	dir := t.TempDir()
	j := sh(t, Spec{PIDNamespace: true, KillAfter: time.Second}, dir, `echo "$$ $PPID" >"$D/ids"; sleep 300 & exit 5`)
	res := wait(t, j)
	if res.Status.ExitCode() != 5 {
		t.Fatalf("result %+v, want exit 5", res)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "ids"))
	if f := strings.Fields(string(b)); len(f) != 2 || f[1] != "1" {
		t.Fatalf("the command's PID and parent in the namespace: %q, want its parent to be the init (1)", b)
	}
	if _, err := Start(t.Context(), Spec{PIDNamespace: true, Leftovers: Ignore, Cmd: exec.Command("true")}); err == nil {
		t.Fatal("PIDNamespace with Leftovers Ignore started")
	}
}
