package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/gofrs/flock"

	"guard/health"
)

// observer reports a run to the health endpoints (--listen) and to
// node_exporter's textfile collector (--textfile-dir). Its zero value
// reports nothing.
type observer struct {
	state   *health.State
	server  *health.Server
	dir     string // --textfile-dir
	name    string
	started time.Time
	jobPID  int
}

// newObserver starts the HTTP server if listen is set, so that a bind error
// fails the run before it takes the lock.
func newObserver(listen, textfileDir, path, name string) (*observer, error) {
	o := &observer{state: new(health.State), dir: textfileDir, name: name}
	o.state.SetLockPath(path)
	if listen == "" {
		return o, nil
	}
	if os.Getenv("GOGC") == "" {
		// Each scrape allocates ~150 KB that the default GOGC=100 lets pile
		// up to a ~15 MiB peak; 25 keeps it under 12 MiB for ~5% more CPU
		// per scrape (measured by make bench; scrapes come every 15s or so).
		debug.SetGCPercent(25)
	}
	reg := health.NewRegistry(o.state, health.BuildInfo{Version: version, Revision: revision()})
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
func (o *observer) jobStarted(pid int) {
	o.started = time.Now()
	o.jobPID = pid
	o.state.JobStarted()
	o.state.SetReady(true)
}

// jobEnded records the job's outcome in the live state (not ready, the
// lock about to be released). The textfile waits for report, after the
// release.
func (o *observer) jobEnded(run health.JobRun) {
	o.state.SetReady(false)
	o.state.JobFinished(run)
	o.state.Released()
}

// report writes the run's outcome to the textfile, if asked to: after the
// lock is released, so a slow or blocked textfile never delays the release.
func (o *observer) report(run health.JobRun) {
	if o.dir == "" {
		return
	}
	if err := o.writeTextfile(run); err != nil {
		logf("--textfile-dir: %v", err)
	}
}

// finish records a run that ended without the job running (skipped).
func (o *observer) finish(run health.JobRun) {
	o.state.JobFinished(run)
	o.report(run)
}

// writeTextfile writes DIR/NAME.prom, serialized with other guard runs of
// the same name (a skipped run does not hold the job's lock) by a flock on
// DIR/.NAME.prom.lock, which node_exporter ignores.
func (o *observer) writeTextfile(run health.JobRun) error {
	fl := flock.New(filepath.Join(o.dir, "."+o.name+".prom.lock"), flock.SetPermissions(0o644),
		flock.SetFlag(os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW))
	if err := fl.Lock(); err != nil {
		return fmt.Errorf("lock %s: %w", fl.Path(), err)
	}
	defer fl.Close()
	return health.WriteTextfile(o.dir, o.name, run)
}

// pid is this process's PID, for the health state.
var pid = os.Getpid()
