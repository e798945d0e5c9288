package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultStopTimeout is how long Control.Run waits for serve to return after the first
// SIGTERM or SIGINT when Control.StopTimeout is zero.
const DefaultStopTimeout = 30 * time.Second

// ErrStopTimeout is returned by Control.Run when serve did not return within the stop
// timeout after a stop request. serve is left running; the caller should exit.
var ErrStopTimeout = errors.New("graceful stop timed out")

// Signals holds the channels on which the signals a daemon handles arrive. Each channel is
// buffered, so a signal that arrives while nobody reads is kept (standard signals do not
// queue: several of one kind pending at once arrive as one).
type Signals struct {
	HUP  <-chan os.Signal // SIGHUP: reload; on its own channel, capacity 1
	Stop <-chan os.Signal // SIGTERM, SIGINT: stop; capacity 2 so a second one is not lost
	USR1 <-chan os.Signal // SIGUSR1: reopen log files; capacity 1

	chans []chan os.Signal
	once  sync.Once
}

// Catch starts catching SIGHUP, SIGTERM, SIGINT and SIGUSR1 (signal.Notify) and returns
// the channels they arrive on. Call it first thing in main, before Detach, so no signal
// that arrives during start-up kills the program. Until Release it keeps catching them
// whether or not anyone reads the channels.
func Catch() *Signals {
	hup, stop, usr1 := make(chan os.Signal, 1), make(chan os.Signal, 2), make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	signal.Notify(usr1, syscall.SIGUSR1)
	return &Signals{HUP: hup, Stop: stop, USR1: usr1, chans: []chan os.Signal{hup, stop, usr1}}
}

// Release stops catching: the signals get their default action again (signal.Stop). The
// channels are not closed. Release is idempotent.
func (s *Signals) Release() {
	s.once.Do(func() {
		for _, c := range s.chans {
			signal.Stop(c)
		}
	})
}

// Control runs a daemon's main loop under the classic signal contract:
//   - SIGHUP calls Reload, never two at once; SIGHUPs that arrive during a reload cause
//     exactly one more reload; a SIGHUP that arrives before Ready is kept until Ready.
//     Under systemd each reload is framed by RELOADING=1 and READY=1.
//   - SIGTERM or SIGINT cancels serve's context (and sends STOPPING=1); serve then has
//     StopTimeout to return. A second SIGTERM or SIGINT calls ForceExit(128+signal
//     number), i.e. exits 143 (TERM) or 130 (INT) by default.
//   - SIGUSR1 calls Reopen (reopen log files after logrotate moved them).
//
// The zero value is usable: SIGHUP is then logged and ignored (not counted), SIGUSR1
// likewise. Set the fields before Run; do not change them afterwards. A Control is for
// one Run.
type Control struct {
	// Reload applies a new configuration. On error the old one must stay in force (that
	// is Reload's business); the error is logged and counted. ctx is cancelled on stop.
	Reload func(ctx context.Context) error
	// Reopen reopens log files; an error is logged.
	Reopen func() error
	// StopTimeout bounds the graceful stop; zero means DefaultStopTimeout.
	StopTimeout time.Duration
	// Logger receives start, stop and reload messages; nil means slog.Default().
	Logger *slog.Logger
	// Handle, from Detach, is told when the program is ready (see Ready). Nil means
	// Ready only notifies systemd.
	Handle *Handle
	// ForceExit ends the program on a second stop signal; nil means os.Exit.
	ForceExit func(code int)

	initOnce  sync.Once
	ready     chan struct{}
	readyOnce sync.Once
	kick      chan struct{} // capacity 1: a pending reload request

	total, failed atomic.Uint64
	lastSuccess   atomic.Int64 // Unix nanoseconds; 0 = never
}

func (c *Control) init() {
	c.initOnce.Do(func() {
		c.ready = make(chan struct{})
		c.kick = make(chan struct{}, 1)
	})
}

func (c *Control) log() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// Ready declares start-up complete: it reports readiness through Handle (to the starting
// process and to systemd) or, when Handle is nil, to systemd alone, and releases a SIGHUP
// that arrived during start-up. Only the first call has an effect; it returns the error of
// the report (the program is considered ready all the same).
func (c *Control) Ready() error {
	c.init()
	var err error
	c.readyOnce.Do(func() {
		if c.Handle != nil {
			err = c.Handle.Started()
		} else {
			_, err = NotifyReady()
		}
		close(c.ready)
	})
	return err
}

// Run calls serve and handles the signals from sigs (nil: none) until serve returns, and
// returns serve's error. serve's context is cancelled when ctx is done or on the first
// SIGTERM/SIGINT; if serve has not returned StopTimeout later, Run returns ErrStopTimeout
// without waiting further. systemd is sent STOPPING=1 on the way out, whether a signal,
// ctx or serve itself ended the run. A reload in progress when serve returns is waited for (within
// StopTimeout). serve should call c.Ready once it is ready.
func (c *Control) Run(ctx context.Context, sigs *Signals, serve func(ctx context.Context) error) error {
	c.init()
	if sigs == nil {
		sigs = &Signals{}
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reloaderDone := make(chan struct{})
	go func() { defer close(reloaderDone); c.reloader(sctx) }()
	served := make(chan error, 1)
	go func() { served <- serve(sctx) }()

	var deadline <-chan time.Time
	stopping := false
	stop := func(why string, attrs ...any) {
		if stopping {
			return
		}
		stopping = true
		c.log().Info("stopping: "+why, attrs...)
		if _, err := Stopping(); err != nil {
			c.log().Warn("sd_notify STOPPING=1 failed", "err", err)
		}
		cancel()
		deadline = time.After(c.stopTimeout())
	}
	done := ctx.Done()
	for {
		select {
		case err := <-served:
			if !stopping {
				// serve ended by itself (a lost lock, a fatal error): the
				// service manager hears it is stopping all the same.
				if _, nerr := Stopping(); nerr != nil {
					c.log().Warn("sd_notify STOPPING=1 failed", "err", nerr)
				}
			}
			cancel()
			select {
			case <-reloaderDone:
			case <-time.After(c.stopTimeout()):
				return errors.Join(err, ErrStopTimeout)
			}
			return err
		case <-sigs.HUP:
			c.requestReload()
		case <-sigs.USR1:
			c.reopen()
		case sig := <-sigs.Stop:
			if stopping {
				c.forceExit(sig)
				continue
			}
			stop("signal received", "signal", sig.String())
		case <-done:
			done = nil
			stop("context done", "cause", context.Cause(ctx))
		case <-deadline:
			c.log().Error("graceful stop timed out", "timeout", c.stopTimeout())
			return ErrStopTimeout
		}
	}
}

func (c *Control) stopTimeout() time.Duration {
	if c.StopTimeout > 0 {
		return c.StopTimeout
	}
	return DefaultStopTimeout
}

// forceExit ends the program on a second stop signal.
func (c *Control) forceExit(sig os.Signal) {
	code := 1
	if s, ok := sig.(syscall.Signal); ok {
		code = 128 + int(s)
	}
	c.log().Error("second stop signal: forcing exit", "signal", sig.String(), "code", code)
	if c.ForceExit != nil {
		c.ForceExit(code)
		return
	}
	os.Exit(code)
}

func (c *Control) reopen() {
	if c.Reopen == nil {
		c.log().Info("SIGUSR1 ignored: nothing to reopen")
		return
	}
	if err := c.Reopen(); err != nil {
		c.log().Error("reopen failed", "err", err)
		return
	}
	c.log().Info("reopened log files")
}
