// Command wakegap measures take-over latency: the time from a lock holder's
// release to the moment a waiting contender's job starts.
//
// wakegap itself is the holder. For each sample it takes an exclusive
// flock(2) on a lock file, starts a waiter whose job is bench/stamp, waits
// until the waiter is really waiting (the kernel lists it as a blocked "->"
// waiter in /proc/locks, or a polling waiter has reported its first failed
// attempt), lets it settle, reads CLOCK_MONOTONIC and releases the lock at
// once. Two gaps are taken from that instant:
//
//   - to exec: when the kernel exec'ed the job, from the process events
//     connector (root only; the column is empty without it);
//   - to stamp: stamp's own CLOCK_MONOTONIC reading at its start, which adds
//     the Go runtime's start-up of the job (the same for every waiter).
//
// The waiters:
//
//	guard      guard run --lock L --wait forever -- stamp
//	flock(1)   flock L stamp
//	floor      floor -block L stamp      (gofrs/flock Lock: blocking flock(2))
//	poll D     floor -poll=D L stamp     (gofrs/flock TryLockContext every D)
//	exec stamp no lock: from just before os/exec starts stamp, the cost of
//	           starting the job alone
//
// The blocking waiters and "exec stamp" are sampled round-robin so drift on
// a shared machine hits them alike; the pollers are released at a random
// phase of their polling period. It prints a Markdown table: median and p90
// in microseconds, and median ratios to flock(1).
//
// It is used only by scripts/bench.sh:
//
//	wakegap -guard bin/guard -floor FLOOR -stamp STAMP -dir DIR [-n 150] [-poll 10ms:60,100ms:30,1s:12] [-tsv FILE]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/bench/internal/execwatch"
)

// waiter is one kind of contender.
type waiter struct {
	key   string // name in the -tsv output
	label string
	how   string                     // how it wakes
	argv  func(lock string) []string // the waiter's command line
	poll  time.Duration              // > 0: a poller with this period
	n     int                        // samples to take
	lock  string
	fd    int             // wakegap's descriptor on lock, held between samples
	gaps  []time.Duration // release to stamp's reading
	execs []time.Duration // release to the job's exec
}

// execs is the process events watcher, nil when unavailable.
var execs *execwatch.Watcher

func main() {
	guard := flag.String("guard", "bin/guard", "guard binary")
	floor := flag.String("floor", "", "bench/floor binary")
	stamp := flag.String("stamp", "", "bench/stamp binary")
	dir := flag.String("dir", "", "directory for the lock files (must be safe for guard)")
	n := flag.Int("n", 150, "samples per blocking waiter")
	polls := flag.String("poll", "10ms:60,100ms:30,1s:12", "polling periods and their sample counts")
	settle := flag.Duration("settle", 10*time.Millisecond, "how long a blocked waiter waits before the release")
	tsv := flag.String("tsv", "", "append key<TAB>value medians to `FILE`")
	flag.Parse()
	if *floor == "" || *stamp == "" || *dir == "" {
		fmt.Fprintln(os.Stderr, "wakegap: -floor, -stamp and -dir are required")
		os.Exit(64)
	}
	blocking := []*waiter{
		{key: "guard", label: "guard run --wait forever", how: "blocking flock(2)", argv: func(l string) []string {
			return []string{*guard, "run", "--lock", l, "--wait", "forever", "--", *stamp}
		}},
		{key: "flock", label: "flock(1)", how: "blocking flock(2)", argv: func(l string) []string { return []string{"flock", l, *stamp} }},
		{key: "floor", label: "floor -block (gofrs Lock)", how: "blocking flock(2)", argv: func(l string) []string {
			return []string{*floor, "-block", l, *stamp}
		}},
		{key: "nolock", label: "exec stamp, no lock", how: "(job start cost)"},
	}
	var pollers []*waiter
	for _, p := range strings.Split(*polls, ",") {
		d, cnt, ok := parsePoll(p)
		if !ok {
			fmt.Fprintf(os.Stderr, "wakegap: -poll %q: want DURATION:COUNT,...\n", p)
			os.Exit(64)
		}
		arg := "-poll=" + d.String()
		pollers = append(pollers, &waiter{key: "poll" + d.String(), label: "gofrs TryLockContext " + d.String(), how: "polling", poll: d, n: cnt,
			argv: func(l string) []string { return []string{*floor, arg, l, *stamp} }})
	}
	var err error
	if execs, err = execwatch.New(); err != nil {
		fmt.Fprintf(os.Stderr, "wakegap: no process events (%v): the \"to exec\" columns stay empty\n", err)
	}
	all := append(append([]*waiter{}, blocking...), pollers...)
	for i, w := range all {
		if w.n == 0 {
			w.n = *n
		}
		if w.argv == nil {
			continue
		}
		if err := w.open(filepath.Join(*dir, fmt.Sprintf("wake%d.lock", i))); err != nil {
			fail(err)
		}
	}
	for i := 0; i < *n; i++ {
		for _, w := range blocking {
			if err := w.sample(*stamp, *settle); err != nil {
				fail(fmt.Errorf("%s: %w", w.label, err))
			}
		}
	}
	for _, w := range pollers {
		for i := 0; i < w.n; i++ {
			if err := w.sample(*stamp, *settle); err != nil {
				fail(fmt.Errorf("%s: %w", w.label, err))
			}
		}
	}
	report(all, blocking[1])
	if *tsv != "" {
		if err := writeTSV(*tsv, all); err != nil {
			fail(err)
		}
	}
}

func parsePoll(s string) (time.Duration, int, bool) {
	ds, cs, ok := strings.Cut(strings.TrimSpace(s), ":")
	d, err1 := time.ParseDuration(ds)
	c, err2 := strconv.Atoi(cs)
	return d, c, ok && err1 == nil && err2 == nil && d > 0 && c > 0
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "wakegap:", err)
	os.Exit(1)
}

// open creates the waiter's lock file and takes the lock on it.
func (w *waiter) open(path string) error {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	w.lock, w.fd = path, fd
	return unix.Flock(fd, unix.LOCK_EX)
}

// sample measures one take-over (or, without argv, one plain job start).
func (w *waiter) sample(stamp string, settle time.Duration) error {
	if execs != nil {
		execs.Reset()
	}
	if w.argv == nil {
		var out bytes.Buffer
		cmd := exec.Command(stamp)
		cmd.Stdout = &out
		t0 := monotonic()
		if err := cmd.Run(); err != nil {
			return err
		}
		return w.record(out.Bytes(), t0)
	}
	argv := w.argv(w.lock)
	cmd := exec.Command(argv[0], argv[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	var busy *os.File
	if w.poll > 0 {
		r, wr, err := os.Pipe()
		if err != nil {
			return err
		}
		cmd.Stderr, busy = wr, r
		defer r.Close()
		defer wr.Close()
	} else {
		cmd.Stderr = &errb
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	var err error
	if w.poll > 0 {
		err = waitBusy(busy)
		settle = rand.N(w.poll) // a random phase of the polling period
	} else {
		err = waitBlocked(w.fd)
	}
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("waiter never waited: %v (stderr: %q)", err, errb.String())
	}
	time.Sleep(settle)
	t := monotonic()
	if err := unix.Flock(w.fd, unix.LOCK_UN); err != nil {
		return err
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("%v (stderr: %q)", err, errb.String())
	}
	if err := unix.Flock(w.fd, unix.LOCK_EX); err != nil {
		return err
	}
	return w.record(out.Bytes(), t)
}

// record adds the gaps from released to stamp's output, "NS PID".
func (w *waiter) record(out []byte, released int64) error {
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return fmt.Errorf("stamp printed %q", out)
	}
	started, err1 := strconv.ParseInt(f[0], 10, 64)
	pid, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return fmt.Errorf("stamp printed %q", out)
	}
	w.gaps = append(w.gaps, time.Duration(started-released))
	if execs == nil {
		return nil
	}
	// The event was queued during execve; the reader may lag a little.
	for range 100 {
		if t, ok := execs.ExecTime(pid); ok {
			w.execs = append(w.execs, time.Duration(t-released))
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return nil // lost to an overrun: this sample has no exec gap
}

// waitBusy waits until a poller writes "busy" on its stderr.
func waitBusy(r *os.File) error {
	r.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 5)
	_, err := r.Read(buf)
	if err == nil && string(buf) != "busy\n" {
		err = fmt.Errorf("unexpected %q", buf)
	}
	return err
}

// waitBlocked waits until /proc/locks lists a blocked waiter ("->") on the
// file fd is open on.
func waitBlocked(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	id := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/locks")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 7 && f[1] == "->" && f[2] == "FLOCK" && f[6] == id {
				return nil
			}
		}
		time.Sleep(200 * time.Microsecond)
	}
	return fmt.Errorf("no blocked waiter in /proc/locks on %s after 10s", id)
}

func monotonic() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}
