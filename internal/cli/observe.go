package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/health"
	"github.com/guardkit/guard/internal/safepath"
)

// observer reports a run to the health endpoints (--listen) and to
// node_exporter's textfile collector (--textfile-dir). Its zero value
// reports nothing.
type observer struct {
	c       *CLI
	state   *health.State
	server  *health.Server
	dir     string // --textfile-dir
	name    string
	started time.Time
	jobPID  int

	rep      *reporter      // --ping, --push, --quiet-success; never nil in guard run
	skipCode int            // a busy lock: guard's exit code
	skipWhy  error          // and why
	notDue   bool           // skipped by --min-interval: no ping
	starts   sync.WaitGroup // textfile writes at the job's start
}

// newObserver starts the HTTP server if listen is set, so that a bind error
// fails the run before it takes the lock.
func (c *CLI) newObserver(listen, textfileDir, path, name string) (*observer, error) {
	o := &observer{c: c, state: new(health.State), dir: textfileDir, name: name}
	o.state.SetLockPath(path)
	if textfileDir != "" {
		if err := checkTextfileDir(textfileDir, name); err != nil {
			return nil, err
		}
	}
	if listen == "" {
		return o, nil
	}
	reg := health.NewRegistry(o.state, health.BuildInfo{Version: c.version, Revision: revision()})
	o.server = health.NewServer(health.Options{Addr: listen, Lock: o.state, Reloads: o.state,
		Ready: o.state.Ready, Gatherer: reg})
	if _, err := o.server.Start(context.Background()); err != nil {
		return nil, exitf(exitInternal, "--listen %s: %v", listen, err)
	}
	return o, nil
}

// close stops the HTTP server, letting requests in flight finish.
func (o *observer) close() {
	if o.server == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	o.server.Shutdown(ctx)
}

// skipped records a run that did not happen because the lock was busy.
func (o *observer) skipped() {
	o.state.Contended()
	o.finish(health.JobRun{Result: health.ResultSkipped})
}

// jobStarted marks the job running and the run ready.
// The textfile shows the running job at once, written in the background so
// the job is not kept waiting.
func (o *observer) jobStarted(pid int) {
	o.started = time.Now()
	o.jobPID = pid
	o.state.JobStartedAt(o.started)
	o.state.SetReady(true)
	if o.dir != "" {
		o.starts.Go(func() {
			if err := o.writeTextfile(func() error { return health.WriteTextfileStarted(o.dir, o.name, o.started) }); err != nil {
				o.c.logf("--textfile-dir: %v", err)
			}
		})
	}
}

// jobEnded records the job's outcome in the live state (not ready). The
// textfile waits for report, after the release.
func (o *observer) jobEnded(run health.JobRun) {
	o.state.SetReady(false)
	o.state.JobFinished(run)
}

// report reports the run's outcome (pings, push, captured output, then the
// textfile with the reports' failures): after the lock is released, so a
// slow or blocked report never delays the release.
func (o *observer) report(run health.JobRun) {
	if o.rep != nil {
		o.rep.ended(&run)
	}
	o.writeEnd(run)
}

func (o *observer) writeEnd(run health.JobRun) {
	if o.dir == "" {
		return
	}
	o.starts.Wait()
	if err := o.writeTextfile(func() error { return health.WriteTextfile(o.dir, o.name, run) }); err != nil {
		o.c.logf("--textfile-dir: %v", err)
	}
}

// finish records a run that ended without the job running (skipped).
func (o *observer) finish(run health.JobRun) {
	o.state.JobFinished(run)
	if o.rep != nil && !o.notDue && o.skipWhy != nil {
		o.rep.skipped(&run, o.skipCode, o.skipWhy)
	}
	o.writeEnd(run)
}

// checkTextfileDir refuses, before the job starts, a --textfile-dir that
// the run could not write at its end: unsafe (78; see safepath), or missing,
// read-only or not writable by guard (73). It creates the sidecar lock that
// writeTextfile takes.
func checkTextfileDir(dir, name string) error {
	d, err := safepath.OpenDir(dir, safepath.Options{})
	if err == nil {
		defer d.Close()
		err = d.Writable()
	}
	if err == nil {
		var f *os.File
		if f, err = d.OpenFile(sidecar(name), os.O_CREATE|os.O_RDWR, 0o600); err == nil {
			f.Close()
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, safepath.ErrUnsafe):
		return exitf(exitUnsafe, "--textfile-dir %s: %v", dir, err)
	}
	return exitf(exitCantCreate, "--textfile-dir %s: cannot write the textfile there: %v", dir, err)
}

// sidecar is the name of the lock file that serializes textfile writers of
// the job name; node_exporter ignores it.
func sidecar(name string) string { return "." + name + ".prom.lock" }

// sidecarWait bounds the wait for the sidecar lock: a writer stuck holding
// it must not keep guard from exiting.
const sidecarWait = 5 * time.Second

// writeTextfile writes DIR/NAME.prom, serialized with other guard runs of
// the same name (a skipped run does not hold the job's lock) by a flock on
// DIR/.NAME.prom.lock, created 0600 through the safely opened directory.
// It gives up when the flock is not free within sidecarWait.
func (o *observer) writeTextfile(write func() error) error {
	d, err := safepath.OpenDir(o.dir, safepath.Options{})
	if err != nil {
		return err
	}
	defer d.Close()
	f, err := d.OpenFile(sidecar(o.name), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer f.Close() // releases the flock
	if err := lockWithin(f, sidecarWait); err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return write()
}

// lockWithin takes an exclusive flock on f, trying again every 20 ms until
// limit has passed.
func lockWithin(f *os.File, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR):
			return err
		case time.Now().After(deadline):
			return fmt.Errorf("still held by another writer after %v; textfile not written", limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
