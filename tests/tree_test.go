package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/guardtest"
)

// These tests hold guard to Promise 6: a run is its whole process tree. Every
// job takes a witness lock with the real flock(1) around what it does, so an
// overlap of two runs is seen by the kernel (flock -n fails, exit 99), not
// guessed from timing.

// witnessFree reports whether nobody holds the witness lock w, asking the
// kernel through flock(1) (which holds it only for an instant).
func witnessFree(t *testing.T, w string) bool {
	t.Helper()
	return run(t, "flock", "-n", "-E", "99", w, "true").code == 0
}

// readPID reads a PID a job wrote into path.
func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pid
}

// killAtEnd SIGKILLs pid, if it still runs, when the test ends: for the
// processes a test deliberately lets escape guard.
func killAtEnd(t *testing.T, pid int) {
	t.Cleanup(func() {
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// startTree starts guard like startGuard, for a job with descendants: at
// the end of the test guard first gets SIGTERM, so it stops the job's whole
// tree, before start's cleanup SIGKILLs it (which would leave the job's
// descendants running, as documented).
func startTree(t *testing.T, args ...string) *proc {
	t.Helper()
	p := startGuard(t, args...)
	t.Cleanup(func() {
		if !p.exited() {
			p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(15 * time.Second):
			}
		}
	})
	return p
}

func iterations(n, short int) int {
	if testing.Short() {
		return short
	}
	return n
}

// leftoverWorkers are the shapes in which a job leaves a worker behind when
// its main process exits: in the background, setsid'ed into its own
// session, and double-forked so that its parent is gone. %[1]s is the
// worker's command. The daemon-like ones close fd 3 (the inherited lock)
// first, as daemons close every descriptor: then only the tree keeps the
// run going. Workers never keep the test's output pipes open, or waiting for
// them would hide an early return.
var leftoverWorkers = []struct{ name, spawn string }{
	{"background", `%[1]s >/dev/null 2>&1 &`},
	{"background-closing-fd3", `sh -c 'exec 3<&-; exec %[1]s' >/dev/null 2>&1 &`},
	{"setsid", `setsid sh -c 'exec 3<&-; exec %[1]s' </dev/null >/dev/null 2>&1 &`},
	{"double-fork", `( sh -c 'exec 3<&-; exec %[1]s' & ) </dev/null >/dev/null 2>&1`},
}

// A job whose main process exits at once, leaving a worker that holds the
// witness for a second: a run started right after the first one returned
// never overlaps it, whatever shape the worker has. With the default
// --leftovers kill the first run returns only once the worker is gone. On
// the old code guard returned when the shell exited and the next run found
// the worker still working.
func TestTreeLeftoverWorkerNeverOverlaps(t *testing.T) {
	guardtest.RequirePeer(t, "flock", "util-linux")
	guardtest.RequirePeer(t, "setsid", "util-linux")
	n := iterations(120, 15)
	for _, w := range leftoverWorkers {
		t.Run(w.name, func(t *testing.T) {
			dir := lockDir(t)
			lock, wit := filepath.Join(dir, "job.lock"), filepath.Join(dir, "witness")
			for i := 0; i < n; i++ {
				ready := filepath.Join(dir, fmt.Sprintf("ready.%d", i))
				worker := fmt.Sprintf(`flock -n -E 98 %s sh -c "touch %s; sleep 1"`, wit, ready)
				// The main process exits as soon as the worker holds the
				// witness. A worker that finds it held (a previous worker
				// still runs) never says ready: caught below.
				job := fmt.Sprintf(w.spawn, worker) + fmt.Sprintf(`
					n=0; while [ ! -e %s ] && [ $n -lt 500 ]; do sleep 0.01; n=$((n+1)); done; exit 0`, ready)
				first := guard(t, "run", "--kill-after", "5s", "--lock", lock, "--", "sh", "-c", job)
				if first.code != 0 {
					t.Fatalf("iteration %d: first run exit %d: %s", i, first.code, first.stderr)
				}
				if !exists(ready) {
					t.Fatalf("iteration %d: the worker never held the witness (another one still did?)", i)
				}
				second := guard(t, "run", "--lock", lock, "--", "flock", "-n", "-E", "99", wit, "true")
				switch second.code {
				case 0, 75:
				case 99:
					t.Fatalf("iteration %d: the first run returned while its %s worker still ran: the next run overlapped it", i, w.name)
				default:
					t.Fatalf("iteration %d: second run exit %d: %s", i, second.code, second.stderr)
				}
			}
		})
	}
}

// --leftovers wait: the run lasts until the worker ends by itself, so when
// guard exits the witness is already free, and the worker was not cut short.
func TestTreeLeftoversWait(t *testing.T) {
	guardtest.RequirePeer(t, "flock", "util-linux")
	dir := lockDir(t)
	lock, wit, ready, done := filepath.Join(dir, "job.lock"), filepath.Join(dir, "witness"),
		filepath.Join(dir, "ready"), filepath.Join(dir, "done")
	job := fmt.Sprintf(`( exec 3<&-; setsid flock -n %s sh -c "touch %s; sleep 1; touch %s" </dev/null >/dev/null 2>&1 & )
		while [ ! -e %s ]; do sleep 0.01; done; exit 0`, wit, ready, done, ready)
	began := time.Now()
	r := guard(t, "run", "--leftovers", "wait", "--lock", lock, "--", "sh", "-c", job)
	took := time.Since(began)
	if r.code != 0 {
		t.Fatalf("run exit %d: %s", r.code, r.stderr)
	}
	if !exists(done) {
		t.Fatalf("guard returned after %v, before the worker finished", took)
	}
	if !witnessFree(t, wit) {
		t.Fatal("guard returned while the worker still held the witness")
	}
	if took < 900*time.Millisecond {
		t.Fatalf("the run took %v; the worker alone sleeps 1s", took)
	}
}

// --leftovers ignore is the documented opt-in overlap (flock -o): the job
// does not inherit the lock (no fd 3, GUARD_LOCK_FD unset), the worker
// outlives guard, and the next run gets the lock while the worker runs.
func TestTreeLeftoversIgnoreIsOptInOverlap(t *testing.T) {
	guardtest.RequirePeer(t, "flock", "util-linux")
	dir := lockDir(t)
	lock, wit, ready, env, pidf := filepath.Join(dir, "job.lock"), filepath.Join(dir, "witness"),
		filepath.Join(dir, "ready"), filepath.Join(dir, "env"), filepath.Join(dir, "pid")
	job := fmt.Sprintf(`echo "fd=${GUARD_LOCK_FD-unset}" > %[1]s
		if [ -e /proc/$$/fd/3 ]; then echo fd3=open >> %[1]s; else echo fd3=closed >> %[1]s; fi
		flock -n %[2]s sh -c "echo \$\$ > %[3]s; touch %[4]s; sleep 3" >/dev/null 2>&1 &
		while [ ! -e %[4]s ]; do sleep 0.01; done; exit 0`, env, wit, pidf, ready)
	r := guard(t, "run", "--leftovers", "ignore", "--lock", lock, "--", "sh", "-c", job)
	if r.code != 0 {
		t.Fatalf("run exit %d: %s", r.code, r.stderr)
	}
	worker := readPID(t, pidf)
	killAtEnd(t, worker)
	if b, _ := os.ReadFile(env); string(b) != "fd=unset\nfd3=closed\n" {
		t.Fatalf("with --leftovers ignore the job inherited the lock: %q", b)
	}
	if !alive(worker) || witnessFree(t, wit) {
		t.Fatal("the worker did not outlive guard with --leftovers ignore")
	}
	// The opt-in overlap: the lock is free although the worker runs.
	if r := guard(t, "run", "--lock", lock, "--", "true"); r.code != 0 {
		t.Fatalf("next run exit %d while only an ignored leftover runs: %s", r.code, r.stderr)
	}
}

// guard stop on a run whose wrapper shell dies at once on SIGTERM while its
// worker traps TERM and takes a second to finish: stop returns 0 only once
// the worker is gone, and the hot standby waiting for the lock never
// overlaps it. Repeated with a fresh standby each cycle. On the old code
// guard released the lock as soon as the wrapper died, and the standby's job
// found the witness held.
func TestTreeStopWaitsForSlowWorker(t *testing.T) {
	guardtest.RequirePeer(t, "flock", "util-linux")
	dir := lockDir(t)
	lock, wit := filepath.Join(dir, "job.lock"), filepath.Join(dir, "witness")
	// Cycle i's job: the witness is taken by the job itself (an overlap
	// exits 99 at once); the worker writes its PID and says it is ready.
	jobOf := func(i int) []string {
		worker := fmt.Sprintf(`trap "sleep 1; exit 0" TERM; echo $$ > %[1]s/worker.%[2]d; touch %[1]s/ready.%[2]d; while :; do sleep 0.05; done`, dir, i)
		return []string{"flock", "-n", "-E", "99", wit, "sh", "-c", fmt.Sprintf(`sh -c '%s' & wait`, worker)}
	}
	runArgs := func(i int, wait bool) []string {
		a := []string{"run", "--lock", lock, "--kill-after", "10s"}
		if wait {
			a = append(a, "--wait", "forever")
		}
		return append(append(a, "--"), jobOf(i)...)
	}
	readyOrOverlap := func(i int, p *proc) {
		t.Helper()
		guardtest.Eventually(t, fmt.Sprintf("cycle %d's job to start", i), func() bool {
			if p.exited() {
				if code := p.cmd.ProcessState.ExitCode(); code == 99 {
					t.Fatalf("cycle %d: the standby's job started while the previous worker still held the witness", i)
				}
				t.Fatalf("cycle %d: run ended early, exit %d: %s", i, p.cmd.ProcessState.ExitCode(), p.stderr)
			}
			return exists(filepath.Join(dir, fmt.Sprintf("ready.%d", i)))
		})
	}
	cycles := iterations(5, 2)
	cur := startTree(t, runArgs(0, false)...)
	readyOrOverlap(0, cur)
	for i := 0; i < cycles; i++ {
		standby := startTree(t, runArgs(i+1, true)...)
		time.Sleep(50 * time.Millisecond) // let it start waiting
		worker := readPID(t, filepath.Join(dir, fmt.Sprintf("worker.%d", i)))
		r := guard(t, "stop", "--lock", lock)
		if r.code != 0 {
			t.Fatalf("cycle %d: stop exit %d: %s%s", i, r.code, r.stdout, r.stderr)
		}
		if alive(worker) {
			t.Fatalf("cycle %d: stop returned 0 while the worker PID %d still ran", i, worker)
		}
		if code := cur.wait(t); code == 99 || code == 0 {
			t.Fatalf("cycle %d: stopped run exit %d: %s", i, code, cur.stderr)
		}
		readyOrOverlap(i+1, standby)
		cur = standby
	}
	if r := guard(t, "stop", "--lock", lock); r.code != 0 {
		t.Fatalf("final stop exit %d: %s", r.code, r.stderr)
	}
	cur.wait(t)
	if !witnessFree(t, wit) {
		t.Fatal("the witness is still held after the final stop")
	}
}

// SIGQUIT to guard is forwarded to the job (which traps it) and guard does
// not die with a goroutine dump, as a Go program does by default.
func TestTreeSIGQUITForwarded(t *testing.T) {
	dir := lockDir(t)
	lock, ready, marks := filepath.Join(dir, "job.lock"), filepath.Join(dir, "ready"), filepath.Join(dir, "marks")
	// No core files from the job's processes that die of the QUIT.
	job := fmt.Sprintf(`ulimit -c 0; trap 'echo quit >> %[1]s' QUIT; touch %[2]s
		n=0; while [ ! -s %[1]s ] && [ $n -lt 300 ]; do sleep 0.01; n=$((n+1)); done
		sleep 0.2; echo done >> %[1]s`, marks, ready)
	p := startTree(t, "run", "--lock", lock, "--", "sh", "-c", job)
	guardtest.Eventually(t, "job started", func() bool { return exists(ready) })
	p.cmd.Process.Signal(syscall.SIGQUIT)
	if code := p.wait(t); code != 0 {
		t.Fatalf("guard exit %d (signal %v) after SIGQUIT: %.300s", code, signalOf(p), p.stderr)
	}
	if b, _ := os.ReadFile(marks); string(b) != "quit\ndone\n" {
		t.Fatalf("job's marks %q, want the trapped QUIT then its normal end", b)
	}
	if s := p.stderr.String(); strings.Contains(s, "goroutine") || strings.Contains(s, "SIGQUIT") {
		t.Fatalf("guard dumped its stacks on SIGQUIT:\n%.300s", s)
	}
}

// guard whose stderr is a pipe nobody reads any more: its own message (the
// SIGHUP it forwards is logged) gets EPIPE, and guard neither dies of
// SIGPIPE nor takes the job with it (the job would get SIGKILL, Pdeathsig).
func TestTreeClosedStderrPipe(t *testing.T) {
	dir := lockDir(t)
	lock, ready, marks := filepath.Join(dir, "job.lock"), filepath.Join(dir, "ready"), filepath.Join(dir, "marks")
	// The job's own stderr goes to a file: the shell reports its sleep
	// killed by the forwarded HUP, and on the closed pipe that write would
	// kill the job with SIGPIPE, as it should (guard catches SIGPIPE rather
	// than ignoring it, so the job starts with the default).
	job := fmt.Sprintf(`exec 2>>%[3]s; trap 'echo hup >> %[1]s' HUP; touch %[2]s
		n=0; while [ ! -s %[1]s ] && [ $n -lt 300 ]; do sleep 0.01; n=$((n+1)); done
		sleep 0.3; echo done >> %[1]s`, marks, ready, filepath.Join(dir, "job.stderr"))
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pr.Close() // nobody will ever read guard's stderr
	cmd := exec.Command(guardBin, "run", "--lock", lock, "--", "sh", "-c", job)
	cmd.Stderr = pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-done })
	guardtest.Eventually(t, "job started", func() bool { return exists(ready) })
	cmd.Process.Signal(syscall.SIGHUP)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("guard did not end")
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		t.Fatalf("guard died of %v writing to a closed stderr", ws.Signal())
	}
	if b, _ := os.ReadFile(marks); string(b) != "hup\ndone\n" {
		t.Fatalf("job's marks %q, want the HUP then its normal end (guard exit %d)", b, ws.ExitStatus())
	}
	if ws.ExitStatus() != 0 {
		t.Fatalf("guard exit %d", ws.ExitStatus())
	}
}
