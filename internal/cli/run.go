package cli

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/daemon"
	"github.com/guardkit/guard/health"
	"github.com/guardkit/guard/instance"
	"github.com/guardkit/guard/job"
)

// runOpts are the flags of guard run.
type runOpts struct {
	lockFlags
	notifyOpts
	wait         waitValue
	conflictExit int
	quiet        bool
	timeout      time.Duration
	killAfter    time.Duration
	leftovers    job.Policy
	pidns        bool
	pidfile      string
	listen       string
	textfileDir  string
	detach       bool
	output       string
	reportOpts   // report.go: --ping, --push, --quiet-success, --jitter, --retries, --min-interval
}

func (c *CLI) parseRun(args []string) (*runOpts, []string, error) {
	o := &runOpts{conflictExit: exitBusy, killAfter: 10 * time.Second}
	fs := c.newFlags("run", "[flags] -- COMMAND [ARG...]")
	o.lockFlags.register(fs)
	o.notifyOpts.register(fs.FlagSet)
	o.reportOpts.register(fs.FlagSet)
	fs.Var(&o.wait, "wait", "how long to wait for a busy lock: 0 (do not wait), a `DURATION`, or forever")
	fs.IntVar(&o.conflictExit, "conflict-exit", exitBusy, "exit `CODE` when the lock is busy or the wait timed out")
	fs.BoolVar(&o.quiet, "quiet", false, "print nothing when the run is skipped because the lock is busy")
	fs.Var(durationFlag{&o.timeout}, "timeout", "stop the job's whole process tree after `DURATION` (SIGTERM, then SIGKILL after --kill-after)")
	fs.Var(durationFlag{&o.killAfter}, "kill-after", "`DURATION` between SIGTERM and SIGKILL when stopping the job's process tree")
	fs.Var(policyFlag{&o.leftovers}, "leftovers", "what happens to processes the job leaves behind when its main process ends: `kill` (TERM, KILL after --kill-after, then release), wait (the run lasts until they end), ignore (they do not inherit the lock, like flock -o)")
	fs.BoolVar(&o.pidns, "pid-namespace", false, "run the job in a PID namespace of its own (root): if guard itself is SIGKILLed, the kernel kills the job's whole tree with it")
	fs.Var(modeFlag{&o.mode}, "lock-mode", "the lock file's `MODE` when guard creates it (octal; default 0600: other users can neither read it nor hold a shared lock on it)")
	fs.StringVar(&o.pidfile, "pidfile", "", "also write guard's PID to `PATH` (removed at exit)")
	fs.StringVar(&o.listen, "listen", "", "serve /livez, /readyz, /healthz and /metrics on `ADDR` (host:port) while the job runs")
	fs.StringVar(&o.textfileDir, "textfile-dir", "", "at the start and end of the run, write `DIR`/NAME.prom for node_exporter's textfile collector")
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
	if o.pidns && o.leftovers == job.Ignore {
		return nil, nil, usagef("run: --pid-namespace does not go with --leftovers ignore (nothing outlives the namespace)")
	}
	if o.listen != "" {
		if err := checkListen(o.listen); err != nil {
			return nil, nil, usagef("run: --listen %q: %v", o.listen, err)
		}
	}
	if o.ping == "" {
		// Kept out of the command line, which every local user can read
		// (ps): an EnvironmentFile= of mode 0600, or the crontab's own
		// variables.
		o.ping = c.getenv(pingURLEnv)
	}
	if err := o.reportOpts.check(o.detach); err != nil {
		return nil, nil, err
	}
	if c.parseOnly {
		return nil, nil, errParsed
	}
	return o, argv, nil
}

// checkListen accepts host:port with a numeric port (0 picks a free one).
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want HOST:PORT, e.g. 127.0.0.1:9101 or :9101")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return errors.New("the port must be a number from 0 to 65535")
	}
	return nil
}

func (c *CLI) runCmd(args []string) error {
	// Signals first: nothing may kill guard while it holds the lock
	// without the job hearing of it.
	sigs := make(chan os.Signal, 32)
	notifyRunSignals(sigs)
	o, argv, err := c.parseRun(args)
	if err != nil {
		return err
	}
	var h *daemon.Handle
	if o.detach {
		if h, err = o.daemonize(argv); err != nil {
			return err
		}
	}
	err = o.run(argv, sigs, h)
	if h != nil && err != nil {
		// Before Ready this reaches the starting process, which prints it
		// and exits with its code; after Ready it is a no-op.
		h.Fail(daemon.WithExitCode(codeOf(err), err))
	}
	return err
}

func (o *runOpts) run(argv []string, sigs <-chan os.Signal, h *daemon.Handle) error {
	o.begin(o.c)
	defer o.end()
	lk, path, name, err := o.open(argv)
	if err != nil {
		return err
	}
	o.c.log.setName(name)
	if o.textfileDir != "" && !validName(name) {
		return usagef("--textfile-dir needs a job name made of letters, digits, '.', '_', '-', '@' (got %q); set --name", name)
	}
	if o.listen != "" {
		o.c.tuneGCForScrapes()
	}
	obs, err := o.c.newObserver(o.listen, o.textfileDir, path, name)
	if err != nil {
		return err
	}
	defer obs.close()
	obs.rep = o.c.newReporter(&o.reportOpts, name, o.detach)
	if err := o.sleepJitter(sigs); err != nil {
		return err
	}
	le, err := o.acquire(lk, sigs, obs)
	if err != nil {
		return err
	}
	if o.notDue(le, path) { // --min-interval: exit 0, counted as skipped
		if err := le.Release(); err != nil {
			o.c.logf("%v", err)
		}
		obs.state.Released()
		obs.notDue = true
		obs.finish(health.JobRun{Result: health.ResultSkipped})
		return nil
	}
	r := &runner{opts: o, lock: lk, lease: le, path: path, name: name, sigs: sigs, obs: obs, handle: h, rep: obs.rep}
	return r.run(argv)
}

// acquire takes the lock, waiting as --wait says.
func (o *runOpts) acquire(lk instance.Locker, sigs <-chan os.Signal, obs *observer) (instance.Lease, error) {
	began := time.Now()
	le, err := lk.TryLock(context.Background())
	if errors.Is(err, instance.ErrHeld) && o.wait.d != 0 {
		obs.state.Contended()
		obs.state.Waiting()
		o.sd.waiting(o.wait.d, obs.state.LockState().Path, err)
		warmStart()
		le, err = o.waitFor(lk, obs.state.LockState().Path, sigs)
	}
	if err == nil {
		obs.state.Acquired(os.Getpid(), le.Token(), le.Since(), time.Since(began))
		o.sd.acquired()
		o.c.log.setToken(le.Token())
	}
	if errors.Is(err, instance.ErrHeld) {
		obs.skipCode, obs.skipWhy = o.conflictExit, err // for --ping-skipped
		if o.wait.d != 0 {
			obs.state.Released() // the standby stops waiting
			obs.finish(health.JobRun{Result: health.ResultSkipped})
		} else {
			obs.skipped()
		}
		if o.quiet {
			return nil, silent(o.conflictExit)
		}
		return nil, daemon.WithExitCode(o.conflictExit, err)
	}
	return le, err
}

// waitFor waits for the lock as long as --wait says. A TERM or INT while
// waiting ends the wait, and guard exits 128+signal (releasing the lock if
// it was taken at that very moment); other signals are ignored until the
// job runs.
func (o *runOpts) waitFor(lk instance.Locker, path string, sigs <-chan os.Signal) (instance.Lease, error) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	wctx := ctx
	if o.wait.d != forever {
		var stop context.CancelFunc
		wctx, stop = context.WithTimeout(ctx, o.wait.d)
		defer stop()
	}
	type result struct {
		le  instance.Lease
		err error
	}
	done := make(chan result, 1)
	go func() {
		le, err := lk.Lock(wctx)
		done <- result{le, err}
	}()
	for {
		select {
		case r := <-done:
			if sig, ok := job.Signal(context.Cause(ctx)); ok {
				if r.err == nil {
					if err := r.le.Release(); err != nil {
						o.c.logf("%v", err)
					}
				}
				return nil, exitf(128+int(sig), "%s: %s while waiting for the lock", path, unix.SignalName(sig))
			}
			return r.le, r.err
		case s := <-sigs:
			if s == syscall.SIGTERM || s == syscall.SIGINT {
				cancel(job.SignalCause(s))
			} else if s == syscall.SIGHUP && o.wait.d == forever {
				o.sd.standbyReload()
			}
		}
	}
}

// warmStart does, before a wait for the lock, the one-time work Go does at
// the first process start (its pidfd support check forks a throw-away
// child), so the job starts sooner once the lock is released.
func warmStart() {
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		p.Release()
	}
}

// tuneGCForScrapes lowers the GC target of a run that serves /metrics,
// unless GOGC says otherwise: each scrape allocates ~150 KB that the
// default GOGC=100 lets pile up to a ~15 MiB peak; 25 keeps it under
// 12 MiB for ~5% more CPU per scrape (measured by make bench; scrapes come
// every 15s or so).
func (c *CLI) tuneGCForScrapes() {
	if c.getenv("GOGC") == "" {
		debug.SetGCPercent(25)
	}
}
