package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"guard/daemon"
	"guard/health"
	"guard/instance"
)

// runOpts are the flags of guard run.
type runOpts struct {
	lockFlags
	wait         waitValue
	conflictExit int
	quiet        bool
	timeout      time.Duration
	killAfter    time.Duration
	pidfile      string
	listen       string
	textfileDir  string
	detach       bool
	output       string
}

func parseRun(args []string) (*runOpts, []string, error) {
	o := &runOpts{conflictExit: exitBusy, killAfter: 10 * time.Second}
	fs := newFlags("run", "[flags] -- COMMAND [ARG...]")
	o.register(fs.FlagSet)
	fs.Var(&o.wait, "wait", "how long to wait for a busy lock: 0 (do not wait), a `DURATION`, or forever")
	fs.IntVar(&o.conflictExit, "conflict-exit", exitBusy, "exit `CODE` when the lock is busy or the wait timed out")
	fs.BoolVar(&o.quiet, "quiet", false, "print nothing when the run is skipped because the lock is busy")
	fs.Var(durationFlag{&o.timeout}, "timeout", "stop the job after `DURATION` (SIGTERM, then SIGKILL after --kill-after)")
	fs.Var(durationFlag{&o.killAfter}, "kill-after", "`DURATION` between SIGTERM and SIGKILL when stopping the job")
	fs.StringVar(&o.pidfile, "pidfile", "", "also write guard's PID to `PATH` (removed at exit)")
	fs.StringVar(&o.listen, "listen", "", "serve /livez, /readyz, /healthz and /metrics on `ADDR` (host:port) while the job runs")
	fs.StringVar(&o.textfileDir, "textfile-dir", "", "on exit, write `DIR`/NAME.prom for node_exporter's textfile collector")
	fs.BoolVar(&o.detach, "detach", false, "daemonize; exit 0 only once the lock is held and the job has started")
	fs.StringVar(&o.output, "output", "", "with --detach: append the job's stdout/stderr to `FILE` (default /dev/null), or 'syslog'")
	if err := fs.parse(args); err != nil {
		return nil, nil, err
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return nil, nil, usagef("run: missing COMMAND (guard run [flags] -- COMMAND [ARG...])")
	}
	if o.conflictExit < 0 || o.conflictExit > 255 {
		return nil, nil, usagef("run: --conflict-exit %d: want 0..255", o.conflictExit)
	}
	if o.output != "" && !o.detach {
		return nil, nil, usagef("run: --output goes with --detach")
	}
	if o.name != "" && !validName(o.name) {
		return nil, nil, usagef("--name %q: use letters, digits, '.', '_', '-', '@' (not leading '.' or '-')", o.name)
	}
	if parseOnly {
		return nil, nil, errParsed
	}
	return o, argv, nil
}

func runCmd(args []string) error {
	// Signals first: nothing may kill guard while it holds the lock
	// without the job hearing of it.
	term := make(chan os.Signal, 4)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	hup := make(chan os.Signal, 32)
	signal.Notify(hup, syscall.SIGHUP)

	o, argv, err := parseRun(args)
	if err != nil {
		return err
	}
	var h *daemon.Handle
	if o.detach {
		if h, err = o.daemonize(argv); err != nil {
			return err
		}
	}
	err = o.run(argv, term, hup, h)
	if h != nil && err != nil {
		// Before Ready this reaches the starting process, which prints it
		// and exits with its code; after Ready it is a no-op.
		h.Fail(daemon.WithExitCode(codeOf(err), err))
	}
	return err
}

func (o *runOpts) run(argv []string, term, hup <-chan os.Signal, h *daemon.Handle) error {
	path, name, err := o.resolve()
	if err != nil {
		return err
	}
	lk, err := o.newLock(path, name, argv)
	if err != nil {
		return err
	}
	if o.textfileDir != "" && !validName(name) {
		return usagef("--textfile-dir needs a job name made of letters, digits, '.', '_', '-', '@' (got %q); set --name", name)
	}
	obs, err := newObserver(o.listen, o.textfileDir, path, name)
	if err != nil {
		return err
	}
	defer obs.close()
	le, err := o.acquire(lk, term, obs)
	if err != nil {
		return err
	}
	s := &supervisor{opts: o, lock: lk, lease: le, path: path, name: name, term: term, hup: hup, obs: obs, handle: h}
	return s.run(argv)
}

// acquire takes the lock, waiting as --wait says.
func (o *runOpts) acquire(lk *instance.Lock, term <-chan os.Signal, obs *observer) (*instance.FileLease, error) {
	began := time.Now()
	le, err := lk.TryLockFile()
	if errors.Is(err, instance.ErrHeld) && o.wait.d != 0 {
		obs.state.Contended()
		obs.state.Waiting()
		warmStart()
		le, err = o.waitFor(lk, term)
	}
	if err == nil {
		obs.state.Acquired(pid, le.Token(), le.Since(), time.Since(began))
	}
	if errors.Is(err, instance.ErrHeld) {
		if o.wait.d != 0 {
			obs.state.Released() // the standby stops waiting
			obs.finish(health.JobRun{Result: health.ResultSkipped})
		} else {
			obs.skipped()
		}
		if o.quiet {
			return nil, silent(o.conflictExit)
		}
		return nil, &exitError{code: o.conflictExit, msg: err.Error()}
	}
	return le, err
}

// waitFor waits for the lock as long as --wait says. A TERM or INT while
// waiting ends the wait, and guard exits 128+signal (releasing the lock if
// it was taken at that very moment).
func (o *runOpts) waitFor(lk *instance.Lock, term <-chan os.Signal) (*instance.FileLease, error) {
	ctx, cancel := context.WithCancel(context.Background())
	if o.wait.d != forever {
		cancel()
		ctx, cancel = context.WithTimeout(context.Background(), o.wait.d)
	}
	defer cancel()
	sigc := make(chan os.Signal, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case s := <-term:
			sigc <- s
			cancel()
		case <-stop:
		}
	}()
	le, err := lk.LockFile(ctx)
	close(stop)
	wg.Wait()
	select {
	case s := <-sigc:
		if err == nil {
			le.Release()
		}
		sig, _ := s.(syscall.Signal)
		return nil, exitf(128+int(sig), "%s: %v while waiting for the lock", lk.Path(), s)
	default:
	}
	return le, err
}

// warmStart does, before a wait for the lock, the one-time work Go does at
// the first process start (its pidfd support check forks a throw-away
// child), so the job starts sooner once the lock is released.
func warmStart() {
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		p.Release()
	}
}
