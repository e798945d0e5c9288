// Command contend measures contention at scale: N contenders started at the
// same instant on one free lock. One of them takes the lock and runs a job
// that appends a line to a file and holds the lock for a while; the others
// find the lock busy and exit. It reports, from the release of the start
// gate, when every loser has exited (the contention is resolved) and when
// all N have (the winner's job included), and checks that exactly one job
// ran.
//
// The start gate: each contender is first a /bin/sh that reports itself
// ready on a pipe, then blocks reading another pipe; once all N are blocked,
// contend closes that pipe's write end, every sh wakes with EOF at once and
// execs the contender in place. So the contenders' own start-up is inside
// the measured time, and their launch is as simultaneous as the kernel
// allows.
//
//	contend -guard bin/guard -dir DIR [-n 1000] [-rounds 3] [-hold 2s] [-floor FLOOR] [-only KEYS] [-log FILE] [-tsv FILE]
//
// The contenders, in alternating rounds (the job appends the time it
// started, from /proc/uptime, to RAN and holds the lock HOLD):
//
//	guard      guard run --lock L -- sh -c JOB
//	flock(1)   flock -n L sh -c JOB
//	floor      bench/floor L sh -c JOB (with -floor): Go, gofrs/flock, os/exec
//	floordeps  the same linking every package guard imports (with -floordeps)
//
// It prints a Markdown table of medians over the rounds and, with -tsv,
// appends "key<TAB>value" lines for scripts/bench.sh. Run it as root, or with
// RLIMIT_NPROC and pid_max high enough for N processes and their threads.
// It is used only by scripts/bench.sh.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// contender is one kind of contender.
type contender struct {
	key   string // name in the TSV output
	label string
	busy  int // the exit code of a loser
	argv  func(lock, job string) []string
	runs  []result
}

// result is one round of one contender.
type result struct {
	losers, last, total time.Duration // median loser exit, last loser exit, last exit
	job                 time.Duration // when the (first) job started, to 10 ms
	ran                 int           // lines in the RAN file
	won, lost, other    int           // exit 0, exit busy, anything else
}

func main() {
	guard := flag.String("guard", "bin/guard", "guard binary")
	dir := flag.String("dir", "", "directory for the lock files (must be safe for guard)")
	n := flag.Int("n", 1000, "contenders per round")
	rounds := flag.Int("rounds", 3, "rounds per contender")
	hold := flag.Duration("hold", 2*time.Second, "how long the winner's job holds the lock")
	tsv := flag.String("tsv", "", "append key<TAB>value results to `FILE`")
	floor := flag.String("floor", "", "also run bench/floor (`BINARY`) as a contender")
	floorDeps := flag.String("floordeps", "", "also run bench/floor built with guard's imports (`BINARY`) as a contender")
	only := flag.String("only", "", "run only these contenders (comma-separated keys: guard, flock, floor, floordeps)")
	logf := flag.String("log", "", "append the contenders' stderr to `FILE` (default /dev/null)")
	flag.Parse()
	if *dir == "" || *n < 2 {
		fmt.Fprintln(os.Stderr, "contend: -dir is required and -n must be at least 2")
		os.Exit(64)
	}
	raiseLimits(*n)
	cs := []*contender{
		{key: "guard", label: "guard run --lock L -- JOB", busy: 75, argv: func(l, job string) []string {
			return []string{*guard, "run", "--lock", l, "--", "/bin/sh", "-c", job}
		}},
		{key: "flock", label: "flock -n L JOB", busy: 1, argv: func(l, job string) []string {
			return []string{"flock", "-n", l, "/bin/sh", "-c", job}
		}},
	}
	if *floor != "" {
		cs = append(cs, &contender{key: "floor", label: "bench/floor L JOB (gofrs/flock + os/exec)", busy: 75,
			argv: func(l, job string) []string { return []string{*floor, l, "/bin/sh", "-c", job} }})
	}
	if *floorDeps != "" {
		cs = append(cs, &contender{key: "floordeps", label: "bench/floor + every package guard imports", busy: 75,
			argv: func(l, job string) []string { return []string{*floorDeps, l, "/bin/sh", "-c", job} }})
	}
	if *only != "" {
		keep := strings.Split(*only, ",")
		cs = slices.DeleteFunc(cs, func(c *contender) bool { return !slices.Contains(keep, c.key) })
	}
	if len(cs) == 0 {
		fail(fmt.Errorf("-only %q: no such contender", *only))
	}
	for r := range *rounds {
		for i, c := range cs {
			lock := filepath.Join(*dir, fmt.Sprintf("contend-%s-%d.lock", c.key, r))
			ran := filepath.Join(*dir, fmt.Sprintf("contend-%s-%d.ran", c.key, r))
			job := fmt.Sprintf("read -r up _ </proc/uptime; echo \"$up\" >>%s; sleep %g", ran, hold.Seconds())
			for _, f := range []string{lock, ran} {
				if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
					fail(err)
				}
			}
			res, err := round(c.argv(lock, job), *n, c.busy, ran, *logf)
			if err != nil {
				fail(fmt.Errorf("%s, round %d: %w", c.label, r+1, err))
			}
			fmt.Fprintf(os.Stderr, "contend: %s round %d: losers median %v, last %v, job started %v, total %v, %d ran\n",
				c.key, r+1, res.losers.Round(time.Millisecond), res.last.Round(time.Millisecond),
				res.job.Round(10*time.Millisecond), res.total.Round(time.Millisecond), res.ran)
			cs[i].runs = append(c.runs, res)
		}
	}
	report(cs, *n, *hold, *tsv)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "contend:", err)
	os.Exit(1)
}

// raiseLimits lifts RLIMIT_NPROC (root may) and warns when pid_max or
// threads-max look too small for n processes of a few threads each.
func raiseLimits(n int) {
	lim := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if err := unix.Setrlimit(unix.RLIMIT_NPROC, &lim); err != nil {
		_ = unix.Getrlimit(unix.RLIMIT_NPROC, &lim)
		if lim.Cur < uint64(4*n) {
			fmt.Fprintf(os.Stderr, "contend: RLIMIT_NPROC is %d, maybe too low for %d contenders (%v)\n", lim.Cur, n, err)
		}
	}
	for _, f := range []string{"/proc/sys/kernel/pid_max", "/proc/sys/kernel/threads-max"} {
		b, err := os.ReadFile(f)
		var v int
		if err == nil {
			fmt.Sscan(string(b), &v)
		}
		if v > 0 && v < 8*n {
			fmt.Fprintf(os.Stderr, "contend: %s is %d, maybe too low for %d Go contenders\n", f, v, n)
		}
	}
}

// gate is the start gate: it tells contend it is ready (fd 4), waits for
// EOF on fd 3, then execs the contender with both closed.
const gate = `echo >&4; read -r _ <&3; exec 3<&- 4>&- "$@"`

// round starts n contenders behind the gate, opens it and reaps them all.
func round(argv []string, n, busy int, ran, logf string) (result, error) {
	var res result
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return res, err
	}
	defer devnull.Close()
	stderr := devnull
	if logf != "" {
		if stderr, err = os.OpenFile(logf, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
			return res, err
		}
		defer stderr.Close()
	}
	gateR, gateW, err := os.Pipe()
	if err != nil {
		return res, err
	}
	defer gateR.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return res, err
	}
	defer readyR.Close()

	args := append([]string{"/bin/sh", "-c", gate, "gate"}, argv...)
	path, err := lookPath(argv[0])
	if err != nil {
		return res, err
	}
	args[4] = path
	attr := &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{devnull.Fd(), devnull.Fd(), stderr.Fd(), gateR.Fd(), readyW.Fd()},
	}
	pids := make(map[int]bool, n)
	for i := range n {
		pid, err := syscall.ForkExec("/bin/sh", args, attr)
		if err != nil {
			gateW.Close()
			readyW.Close()
			reapAll(pids)
			return res, fmt.Errorf("start contender %d: %w", i+1, err)
		}
		pids[pid] = true
	}
	readyW.Close()
	// Every sh is ready (and so about to block on the gate) once it wrote.
	buf := make([]byte, 4096)
	for got := 0; got < n; {
		m, err := readyR.Read(buf)
		if err != nil {
			gateW.Close()
			reapAll(pids)
			return res, fmt.Errorf("%d of %d contenders ready: %v", got, n, err)
		}
		got += m
	}
	time.Sleep(50 * time.Millisecond) // the last ones reach read(2)

	t0 := time.Now()
	boot0 := boottime()
	gateW.Close()
	var losers []time.Duration
	for len(pids) > 0 {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return res, fmt.Errorf("wait4: %w", err)
		}
		if !pids[pid] {
			continue
		}
		delete(pids, pid)
		t := time.Since(t0)
		res.total = t
		switch {
		case ws.Exited() && ws.ExitStatus() == 0:
			res.won++
		case ws.Exited() && ws.ExitStatus() == busy:
			res.lost++
			losers = append(losers, t)
			res.last = t
		default:
			res.other++
		}
	}
	slices.Sort(losers)
	if len(losers) > 0 {
		res.losers = losers[len(losers)/2]
	}
	b, err := os.ReadFile(ran)
	if err != nil && !os.IsNotExist(err) {
		return res, err
	}
	res.ran = bytes.Count(b, []byte("\n"))
	var up float64
	if _, err := fmt.Sscan(string(b), &up); err == nil {
		res.job = time.Duration(up*1e9) - boot0
	}
	return res, nil
}

// boottime reads CLOCK_BOOTTIME, the clock of /proc/uptime.
func boottime() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return time.Duration(ts.Nano())
}

// reapAll kills and reaps the gated contenders after a failed start.
func reapAll(pids map[int]bool) {
	for pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for pid := range pids {
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
	}
}

// lookPath finds a command in $PATH as sh would.
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in $PATH", name)
}
