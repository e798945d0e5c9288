// Command dstart measures daemon start: the time from invoking a starter to
// the starter's exit, for the same program (sleep) started as a daemon by
//
//	guard      guard run --detach --lock L -- SLEEP ARG
//	daemonize  daemonize -p PIDFILE -l LOCKFILE SLEEP ARG
//	ssd        start-stop-daemon --start --background --make-pidfile --pidfile PIDFILE --exec SLEEP -- ARG
//
// ARG is a number unique to the round (sleep 100000.N), so the daemon is
// known by its command line. guard exits only once the lock is held and the
// job has started (its readiness guarantee); daemonize and start-stop-daemon
// exit once they have forked, before the program runs. So dstart also
// records when the daemon's exec happened (the kernel's process events
// connector, CLOCK_MONOTONIC; root only), and whether it had happened by the
// time the starter exited. After each start it verifies that the daemon runs
// (its command line is the expected one, and it is not a zombie), then stops
// it (guard stop; SIGTERM for the others) and reaps it: dstart is a child
// subreaper, so the detached daemons are its orphans.
//
//	dstart -guard bin/guard -dir DIR [-rounds 40] [-tsv FILE]
//
// Starters run round-robin, so drift on a shared machine hits them alike. It
// prints a Markdown table of medians and, with -tsv, appends
// "key<TAB>value" lines for scripts/bench.sh. It is used only by
// scripts/bench.sh.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/bench/internal/execwatch"
)

// starter is one way to start a daemon.
type starter struct {
	key, label string
	argv       func(arg string) []string
	stop       func(pid int) error // stops the daemon whose program runs as pid
	exits      []time.Duration     // invocation to the starter's exit
	execs      []time.Duration     // invocation to the daemon's exec
	ready      int                 // rounds where the daemon had exec'ed when the starter exited
}

var (
	watch *execwatch.Watcher // nil when the connector is unavailable
	sleep string             // the daemon program
)

func main() {
	guard := flag.String("guard", "bin/guard", "guard binary")
	dir := flag.String("dir", "", "directory for lock and PID files (must be safe for guard)")
	rounds := flag.Int("rounds", 40, "starts per starter")
	tsv := flag.String("tsv", "", "append key<TAB>value results to `FILE`")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "dstart: -dir is required")
		os.Exit(64)
	}
	var err error
	if sleep, err = exec.LookPath("sleep"); err != nil {
		fail(err)
	}
	if sleep, err = filepath.Abs(sleep); err != nil {
		fail(err)
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fail(fmt.Errorf("become a child subreaper: %w", err))
	}
	if watch, err = execwatch.New(); err != nil {
		fmt.Fprintf(os.Stderr, "dstart: no process events (%v): exec times stay empty, readiness is read from /proc\n", err)
	}
	lock := filepath.Join(*dir, "dstart.lock")
	dlock, dpid := filepath.Join(*dir, "daemonize.lock"), filepath.Join(*dir, "daemonize.pid")
	spid := filepath.Join(*dir, "ssd.pid")
	ss := []*starter{
		{key: "guard", label: "guard run --detach --lock L -- sleep", argv: func(a string) []string {
			return []string{*guard, "run", "--detach", "--lock", lock, "--", sleep, a}
		}, stop: func(int) error {
			return run(*guard, "stop", "--lock", lock)
		}},
		{key: "daemonize", label: "daemonize -p P -l L sleep", argv: func(a string) []string {
			return []string{"daemonize", "-p", dpid, "-l", dlock, sleep, a}
		}, stop: func(pid int) error { return kill(pid, dpid) }},
		{key: "ssd", label: "start-stop-daemon --start --background -m -p P --exec sleep", argv: func(a string) []string {
			return []string{"start-stop-daemon", "--start", "--background", "--make-pidfile", "--pidfile", spid,
				"--exec", sleep, "--", a}
		}, stop: func(pid int) error { return kill(pid, spid) }},
	}
	for r := range *rounds {
		for i, s := range ss {
			arg := fmt.Sprintf("100000.%d%d", r+1, i)
			if err := s.once(arg); err != nil {
				fail(fmt.Errorf("%s, round %d: %w", s.label, r+1, err))
			}
		}
	}
	report(ss, *tsv)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "dstart:", err)
	os.Exit(1)
}

// once starts the daemon, checks it runs, stops it and reaps what is left.
func (s *starter) once(arg string) error {
	if watch != nil {
		watch.Reset()
	}
	c, err := prepare(s.argv(arg))
	if err != nil {
		return err
	}
	t0 := monotonic()
	if err := c.start(); err != nil {
		return err
	}
	_, err = c.wait()
	t1 := monotonic()
	if err != nil {
		return err
	}
	s.exits = append(s.exits, time.Duration(t1-t0))

	// Readiness at the starter's exit, then the daemon within 5s.
	want := []byte(sleep + "\x00" + arg + "\x00")
	dpid, at, found := find(want)
	if found && watch == nil {
		s.ready++ // seen in /proc at once
	}
	deadline := time.Now().Add(5 * time.Second)
	for !found && time.Now().Before(deadline) {
		time.Sleep(200 * time.Microsecond)
		dpid, at, found = find(want)
	}
	if !found {
		return fmt.Errorf("no process runs %s %s 5s after the starter exited", sleep, arg)
	}
	if watch != nil {
		s.execs = append(s.execs, time.Duration(at-t0))
		if at <= t1 {
			s.ready++
		}
	}
	if err := running(dpid, want); err != nil {
		return err
	}
	if err := s.stop(dpid); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	return reapUntilGone(dpid)
}

// find looks for the daemon among the processes that exec'ed since the
// reset (or, without the watcher, in all of /proc), and returns its PID and
// exec time.
func find(cmdline []byte) (pid int, at int64, ok bool) {
	if watch != nil {
		for p, t := range watch.Seen() {
			if b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline"); err == nil && bytes.Equal(b, cmdline) {
				return p, t, true
			}
		}
		return 0, 0, false
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && bytes.Equal(b, cmdline) {
			return p, 0, true
		}
	}
	return 0, 0, false
}

// running checks that pid still runs the daemon and is not a zombie.
func running(pid int, cmdline []byte) error {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return fmt.Errorf("daemon PID %d: %w", pid, err)
	}
	if i := bytes.LastIndexByte(b, ')'); i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X' {
		return fmt.Errorf("daemon PID %d is not running: %s", pid, b)
	}
	if c, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); !bytes.Equal(c, cmdline) {
		return fmt.Errorf("daemon PID %d now runs %q", pid, c)
	}
	return nil
}

// kill stops a daemon started by daemonize or start-stop-daemon and removes
// its PID file.
func kill(pid int, pidfile string) error {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return err
	}
	return os.Remove(pidfile)
}

// run runs a command to its end; a non-zero exit is an error.
func run(argv ...string) error {
	c, err := prepare(argv)
	if err != nil {
		return err
	}
	if err := c.start(); err != nil {
		return err
	}
	_, err = c.wait()
	return err
}

// reapUntilGone reaps orphans (dstart is their subreaper) until pid is gone.
func reapUntilGone(pid int) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var ws syscall.WaitStatus
		for {
			p, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if p <= 0 || err != nil {
				break
			}
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("daemon PID %d still there 10s after it was stopped", pid)
}

// child is a command started without os/exec, so that the subreaper's
// wait4(-1) never races a Go-side wait.
type child struct {
	path   string
	argv   []string
	null   *os.File
	stderr *os.File // an unlinked temporary file
	pid    int
}

// prepare opens what the command needs, so that start does nothing else.
func prepare(argv []string) (*child, error) {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, err
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	ef, err := os.CreateTemp("", "dstart-stderr")
	if err != nil {
		null.Close()
		return nil, err
	}
	os.Remove(ef.Name())
	return &child{path: path, argv: argv, null: null, stderr: ef}, nil
}

// start starts the command with stdin and stdout on /dev/null.
func (c *child) start() error {
	pid, err := syscall.ForkExec(c.path, c.argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{c.null.Fd(), c.null.Fd(), c.stderr.Fd()},
	})
	if err != nil {
		c.close()
	}
	c.pid = pid
	return err
}

// wait waits for the command; an exit other than 0 is an error with its stderr.
func (c *child) wait() (syscall.WaitStatus, error) {
	defer c.close()
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(c.pid, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return ws, err
		}
		break
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		b := make([]byte, 4096)
		n, _ := c.stderr.ReadAt(b, 0)
		return ws, fmt.Errorf("%v: %v: %s", c.argv, ws, bytes.TrimSpace(b[:n]))
	}
	return ws, nil
}

func (c *child) close() {
	c.null.Close()
	c.stderr.Close()
}

func monotonic() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}
