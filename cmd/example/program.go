package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/guardkit/guard/daemon"
	"github.com/guardkit/guard/health"
	"github.com/guardkit/guard/instance"
)

// program is the daemon proper: its configuration, lock, health and signals.
type program struct {
	opts  options
	log   *slog.Logger
	cfg   atomic.Pointer[config] // swapped whole by reload, read by serve
	state health.State           // lock and readiness, read by the health handlers
	ctl   *daemon.Control        // signals, readiness, reload counts
}

func newProgram(o options, log *slog.Logger) *program { return &program{opts: o, log: log} }

// run starts the program and serves until a stop signal (nil) or the loss of
// the lock (an error). A start-up failure also goes to the starting command.
func (p *program) run(sigs *daemon.Signals, h *daemon.Handle) error {
	p.ctl = &daemon.Control{Reload: p.reload, Handle: h, Logger: p.log}
	if h != nil {
		p.ctl.Reopen = h.ReopenOutput // SIGUSR1 after logrotate moved --output
	}
	return p.ctl.Run(context.Background(), sigs, func(ctx context.Context) error {
		lease, srv, err := p.start(ctx)
		if err != nil {
			if h != nil { // the starting command prints this and exits with its code
				if ferr := h.Fail(daemon.WithExitCode(exitCode(err), fmt.Errorf("example: %w", err))); ferr != nil {
					p.log.Warn("report the failure", "err", ferr)
				}
			}
			return err
		}
		defer p.stop(lease, srv)
		p.state.SetReady(true) // before ctl.Ready: /readyz is 200 once the starter returns
		if err := p.ctl.Ready(); err != nil {
			p.log.Warn("report readiness", "err", err)
		}
		return p.serve(ctx, lease)
	})
}

// start loads the configuration, takes the lock and starts the health server.
// On error it leaves nothing held or running.
func (p *program) start(ctx context.Context) (instance.Lease, *health.Server, error) {
	cfg, err := loadConfig(p.opts.config)
	if err != nil {
		return nil, nil, err
	}
	p.cfg.Store(cfg)
	lk, err := instance.New(instance.Options{Path: p.opts.lock, Name: p.opts.name, Command: os.Args})
	if err != nil {
		return nil, nil, err
	}
	lease, err := lk.TryLock(ctx) // busy: an *instance.HeldError naming the holder
	if err != nil {
		return nil, nil, err
	}
	p.state.SetLockPath(lk.Path())
	p.state.Acquired(os.Getpid(), lease.Token(), lease.Since(), 0)
	p.log.Info("lock acquired", "path", lk.Path(), "token", lease.Token())
	if p.opts.listen == "" {
		return lease, nil, nil
	}
	srv := health.NewServer(health.Options{
		Addr:     p.opts.listen,
		Lock:     &p.state,
		Ready:    p.state.Ready,
		Reloads:  &p.state,
		Gatherer: health.NewRegistry(&p.state, health.BuildInfo{Version: "example"}),
	})
	addr, err := srv.Start(ctx)
	if err != nil {
		p.release(lease)
		return nil, nil, fmt.Errorf("--listen %s: %w", p.opts.listen, err)
	}
	p.log.Info("serving health endpoints", "addr", addr.String())
	return lease, srv, nil
}

// serve does the job: it logs the message every interval until ctx is done
// (nil) or the lock is lost (an error matching instance.ErrLost).
func (p *program) serve(ctx context.Context, lease instance.Lease) error {
	tick := time.NewTimer(0) // the first message at once
	defer tick.Stop()
	// systemd's watchdog (WatchdogSec=) is fed from this loop rather than by
	// daemon.Watchdog in a goroutine of its own, so a wedged loop gets the
	// service restarted.
	var ping <-chan time.Time
	if d, err := daemon.WatchdogInterval(); err != nil {
		p.log.Warn("systemd watchdog", "err", err)
	} else if d > 0 {
		t := time.NewTicker(d / 2)
		defer t.Stop()
		ping = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ping:
			if _, err := daemon.Notify("WATCHDOG=1"); err != nil {
				p.log.Warn("sd_notify WATCHDOG=1", "err", err)
			}
		case <-lease.Lost():
			p.state.Lost() // not ready from now on; counts guard_lock_lost_total
			// Returning ends Control.Run, which tells systemd STOPPING=1.
			return fmt.Errorf("lost the lock, exiting so that a supervisor restarts us: %w", lease.Err())
		case <-tick.C:
			cfg := p.cfg.Load()
			p.log.Info(cfg.Message)
			tick.Reset(cfg.Interval) // a reloaded interval counts from the next message
		}
	}
}

// reload rereads the configuration file. On error the old one stays in force;
// daemon.Control logs and counts the failure.
func (p *program) reload(ctx context.Context) error {
	cfg, err := loadConfig(p.opts.config)
	// One count for /healthz and /metrics alike: the health State.
	p.state.Reload(err == nil, time.Now())
	if err != nil {
		return err
	}
	p.cfg.Store(cfg)
	p.log.Info("configuration loaded", "message", cfg.Message, "interval", cfg.Interval)
	return nil
}

// stop undoes start: not ready, lock released, health server shut down.
func (p *program) stop(lease instance.Lease, srv *health.Server) {
	p.state.SetReady(false)
	p.release(lease)
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			p.log.Warn("health server shutdown", "err", err)
		}
	}
}

// release gives the lock up. The record is marked released (guard status then
// says "released cleanly", exit 3); the lock file itself is never removed.
func (p *program) release(lease instance.Lease) {
	if err := lease.Release(); err != nil {
		p.log.Error("release the lock", "err", err)
	}
	p.state.Released()
	p.log.Info("lock released", "path", p.opts.lock)
}
