package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/guardkit/guard/daemon"
	"github.com/guardkit/guard/instance"
)

// notifyOpts are guard run's flags for systemd and for guard's own log
// lines, and the run's voice to systemd once parsed.
type notifyOpts struct {
	notify    string // guard, job or none
	logFormat string // text or json
	sd        *sdNotifier
}

func (n *notifyOpts) register(fs *flag.FlagSet) {
	n.notify, n.logFormat = notifyGuard, "text"
	fs.Var(choiceFlag{&n.notify, []string{notifyGuard, notifyJob, notifyNone}}, "notify",
		"who speaks sd_notify to systemd: `guard` (READY=1 once the job runs), job (the job's own messages, relayed through a private NOTIFY_SOCKET), none (guard says nothing; the job's environment is left as it is)")
	fs.Var(choiceFlag{&n.logFormat, []string{"text", "json"}}, "log-format",
		"guard's own lines on stderr: `text` or json (time, level, msg, name, pid, token); with <N> priorities when stderr is the journal")
}

// The --notify modes.
const (
	notifyGuard = "guard"
	notifyJob   = "job"
	notifyNone  = "none"
)

// choiceFlag is a string flag that takes one of a few words.
type choiceFlag struct {
	v     *string
	words []string
}

func (f choiceFlag) String() string {
	if f.v == nil {
		return ""
	}
	return *f.v
}

func (f choiceFlag) Set(s string) error {
	for _, w := range f.words {
		if s == w {
			*f.v = s
			return nil
		}
	}
	return fmt.Errorf("want %s", strings.Join(f.words, ", "))
}

// begin sets guard's log format and prepares the run's voice to systemd;
// its watchdog runs until end.
func (n *notifyOpts) begin(c *CLI) {
	c.log.setFormat(n.logFormat)
	n.sd = newNotifier(c, n.notify)
	n.sd.start()
}

// end stops the watchdog and the relay.
func (n *notifyOpts) end() { n.sd.close() }

// The phases the watchdog and readiness depend on.
const (
	phaseStarting  int32 = iota // before the lock: no pings yet
	phaseWaiting                // a standby or a bounded wait: pings (guard is alive)
	phaseHeld                   // the lock is held: pings, READY=1 allowed
	phaseUnhealthy              // the lock lost or the lease in jeopardy: no pings, no READY=1
	phaseEnded                  // the job is over: no pings, no READY=1
)

// extendMargin is added to every EXTEND_TIMEOUT_USEC guard sends: the time
// guard itself may take around the wait or the stop.
const extendMargin = 5 * time.Second

// sdNotifier is guard run's voice to systemd. Its zero value, and one made
// when $NOTIFY_SOCKET is unset or --notify none, says nothing.
type sdNotifier struct {
	c           *CLI
	mode        string
	on          bool
	mu          sync.Mutex // orders guard's datagrams and the relayed ones
	phase       atomic.Int32
	jobWatchdog atomic.Bool // the job sent WATCHDOG=1: the watchdog is the job's now
	warned      atomic.Bool
	stalled     atomic.Int64 // until when (Unix ns) the job's messages are dropped
	relay       *daemon.Relay
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

func newNotifier(c *CLI, mode string) *sdNotifier {
	ctx, cancel := context.WithCancel(context.Background())
	on := mode != notifyNone && c.getenv(daemon.NotifySocketEnv) != ""
	return &sdNotifier{c: c, mode: mode, on: on, ctx: ctx, cancel: cancel}
}

// start runs the watchdog: WATCHDOG=1 at half WATCHDOG_USEC while guard
// waits for the lock or holds it (not once it is lost or the lease is in
// jeopardy), and, with --notify job, only until the job pings itself.
func (s *sdNotifier) start() {
	if s == nil || !s.on {
		return
	}
	s.wg.Go(func() {
		err := daemon.WatchdogWhile(s.ctx, func() bool {
			p := s.phase.Load()
			return (p == phaseWaiting || p == phaseHeld) && !s.jobWatchdog.Load()
		})
		if err != nil {
			s.c.logf("watchdog: %v", err)
		}
	})
}

// close stops the watchdog and the relay, and waits for them.
func (s *sdNotifier) close() {
	if s == nil {
		return
	}
	s.cancel()
	if s.relay != nil {
		s.relay.Close()
	}
	s.wg.Wait()
}

// send sends the assignments in one datagram; the first failure is logged.
func (s *sdNotifier) send(lines ...string) {
	if s == nil || !s.on || len(lines) == 0 {
		return
	}
	s.mu.Lock()
	_, err := daemon.Notify(strings.Join(lines, "\n"))
	s.mu.Unlock()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		s.stalled.Store(time.Now().Add(stallPause).UnixNano())
	}
	if err != nil && !s.warned.Swap(true) {
		s.c.logf("%v", err)
	}
}

// stallPause is how long the job's messages are dropped after a send found
// systemd's socket full for daemon.NotifyTimeout: guard's own messages
// (STOPPING=1, the end) must not queue behind a flood.
const stallPause = 5 * time.Second

// stalling reports whether systemd recently stopped reading.
func (s *sdNotifier) stalling() bool { return time.Now().UnixNano() < s.stalled.Load() }

func status(format string, a ...any) string {
	return daemon.StatusAssignment(fmt.Sprintf(format, a...))
}

// holderOf describes who holds the lock, from a busy error.
func holderOf(err error) string {
	var he *instance.HeldError
	if errors.As(err, &he) && he.Holder != nil {
		if d := he.Holder.Describe(); d != "" {
			return d
		}
	}
	return "held by another process"
}

// waiting reports a wait for a busy lock: a standby (--wait forever) is
// started as far as systemd is concerned (READY=1, with a STATUS= saying it
// waits; /readyz stays 503); a bounded wait extends the start timeout.
// sleeping reports --jitter's sleep before the lock: guard is alive (the
// watchdog pings) and its start takes d longer.
func (s *sdNotifier) sleeping(d time.Duration) {
	if s == nil {
		return
	}
	s.phase.Store(phaseWaiting)
	s.send(daemon.ExtendTimeoutAssignment(d+extendMargin), status("--jitter: sleeping %v before taking the lock", d.Round(time.Millisecond)))
}

func (s *sdNotifier) waiting(d time.Duration, path string, busy error) {
	if s == nil {
		return
	}
	s.phase.Store(phaseWaiting)
	if d == forever {
		s.send("READY=1", status("standby: waiting for %s, %s", path, holderOf(busy)))
		return
	}
	s.send(daemon.ExtendTimeoutAssignment(d+extendMargin), status("waiting up to %v for %s, %s", d, path, holderOf(busy)))
}

// standbyReload answers a SIGHUP to a standby: nothing to reload yet, but
// a Type=notify-reload unit waits for RELOADING=1 and READY=1.
func (s *sdNotifier) standbyReload() {
	if s == nil || !s.on {
		return
	}
	if r, err := daemon.ReloadingAssignment(); err == nil {
		s.send(r)
	}
	s.send("READY=1", status("standby: still waiting for the lock; SIGHUP has nothing to reload"))
}

// acquired marks the lock held.
func (s *sdNotifier) acquired() {
	if s != nil {
		s.phase.Store(phaseHeld)
	}
}

// started reports the job running: READY=1 (guard mode) or only the status
// (job mode: readiness is the job's own, relayed).
func (s *sdNotifier) started(pid int, token uint64) {
	if s == nil {
		return
	}
	st := status("running job PID %d, token %d", pid, token)
	if s.mode == notifyJob || s.phase.Load() != phaseHeld {
		s.send(st)
		return
	}
	s.send("READY=1", st)
}

// reloading sends RELOADING=1 with MONOTONIC_USEC, before a SIGHUP is
// forwarded to the job.
func (s *sdNotifier) reloading() {
	if s == nil || !s.on {
		return
	}
	r, err := daemon.ReloadingAssignment()
	if err != nil {
		s.c.logf("%v", err)
		return
	}
	s.send(r)
}

// reloaded ends a reload: READY=1 once the SIGHUP was delivered (guard
// mode; in job mode the job's own READY=1 is relayed), or READY=1 with a
// STATUS= saying why it was not. Never READY=1 without the lock.
func (s *sdNotifier) reloaded(err error) {
	if s == nil {
		return
	}
	held := s.phase.Load() == phaseHeld
	switch {
	case err != nil && held:
		s.send("READY=1", status("reload failed: forward SIGHUP to the job: %v", err))
	case err != nil:
		s.send(status("reload failed: forward SIGHUP to the job: %v", err))
	case s.mode == notifyGuard && held:
		s.send("READY=1")
	}
}

// stopping reports a stop: STOPPING=1, why, and a stop timeout extended
// to --kill-after (and a margin), so that TimeoutStopSec does not cut
// short the escalation guard is doing.
func (s *sdNotifier) stopping(why string, killAfter time.Duration) {
	s.send("STOPPING=1", status("stopping: %s", why), daemon.ExtendTimeoutAssignment(killAfter+extendMargin))
}

// unhealthy reports the lock lost or the lease in jeopardy: the watchdog
// stops, and neither guard nor the job can say READY=1 any more.
func (s *sdNotifier) unhealthy(why string) {
	if s == nil {
		return
	}
	s.phase.Store(phaseUnhealthy)
	s.send(status("%s", why))
}

// tell sends a STATUS= line and nothing else.
func (s *sdNotifier) tell(format string, a ...any) { s.send(status(format, a...)) }

// relocked reports the lock taken again after a loss.
func (s *sdNotifier) relocked(pid int, token uint64) {
	if s == nil {
		return
	}
	s.c.log.setToken(token)
	s.phase.Store(phaseHeld)
	s.send(status("took the lock again; running job PID %d, token %d", pid, token))
}

// ended reports the job's end; no more pings or READY=1.
func (s *sdNotifier) ended(why string) {
	if s == nil {
		return
	}
	for p := s.phase.Load(); p != phaseUnhealthy && !s.phase.CompareAndSwap(p, phaseEnded); p = s.phase.Load() {
	}
	s.send(status("%s", why))
}

// retrying reports the pause between two attempts of --retries: the lock
// is still held, so the watchdog pings again and the next attempt may say
// READY=1 (never after the lock was lost or the lease was in jeopardy).
func (s *sdNotifier) retrying(why string) {
	if s == nil {
		return
	}
	s.jobWatchdog.Store(false) // guard pings until the next attempt's job does
	s.phase.CompareAndSwap(phaseEnded, phaseHeld)
	s.send(status("%s", why))
}

// idleReload answers a SIGHUP that has no job to go to (between two
// attempts): interpose sent RELOADING=1, this sends READY=1, so a
// Type=notify-reload unit's reload ends at once.
func (s *sdNotifier) idleReload(why string) {
	if s == nil || s.phase.Load() != phaseHeld {
		return
	}
	s.send("READY=1", status("%s", why))
}

// interpose passes guard's signals on to the job, sending RELOADING=1
// before each SIGHUP reaches it, so that the job's own READY=1 (relayed)
// always comes after.
func (s *sdNotifier) interpose(sigs <-chan os.Signal) <-chan os.Signal {
	if s == nil || !s.on {
		return sigs
	}
	out := make(chan os.Signal, cap(sigs))
	s.wg.Go(func() {
		for {
			select {
			case sig := <-sigs:
				if sig == syscall.SIGHUP {
					s.reloading()
				}
				out <- sig
			case <-s.ctx.Done():
				return
			}
		}
	})
	return out
}

// jobEnv returns the job's environment for the mode. guard: the job does
// not see systemd's socket or watchdog (guard speaks alone). none: as it
// is. job: NOTIFY_SOCKET is a private relay, WATCHDOG_USEC stays when the
// watchdog is guard's and WATCHDOG_PID goes (so sd_watchdog_enabled(3) in
// the job says yes).
func (s *sdNotifier) jobEnv(env []string) ([]string, error) {
	if s == nil || s.mode == notifyNone {
		return env, nil
	}
	drop := []string{daemon.NotifySocketEnv, daemon.WatchdogUsecEnv, daemon.WatchdogPIDEnv}
	var add []string
	if s.mode == notifyJob && s.on {
		if s.relay == nil { // one relay for every attempt of --retries
			rl, err := daemon.ListenRelay(s.relayParent())
			if err != nil {
				return nil, err
			}
			s.relay = rl
			s.runRelay()
		}
		add = append(add, daemon.NotifySocketEnv+"="+s.relay.Path())
		if d, err := daemon.WatchdogInterval(); err == nil && d > 0 {
			add = append(add, daemon.WatchdogUsecEnv+"="+fmt.Sprint(d.Microseconds()))
		}
	}
	return append(without(env, drop...), add...), nil
}

// relayParent is where the relay's private directory goes: the unit's
// first $RUNTIME_DIRECTORY (writable even under ProtectSystem=strict), or
// the temporary directory.
func (s *sdNotifier) relayParent() string {
	dir, _, _ := strings.Cut(s.c.getenv("RUNTIME_DIRECTORY"), ":")
	return dir
}

// relayQueue bounds the job's messages waiting to be passed on; beyond it
// they are dropped (and counted), so a job that floods its socket slows
// down nobody but itself.
const relayQueue = 64

// runRelay reads the job's datagrams and passes them on to systemd.
func (s *sdNotifier) runRelay() {
	msgs := make(chan daemon.RelayMessage, relayQueue)
	s.wg.Go(func() {
		defer close(msgs)
		if err := s.relay.Run(s.ctx, msgs); err != nil {
			s.c.logf("%v", err)
		}
	})
	s.wg.Go(func() {
		var told sync.Map
		for m := range msgs {
			if s.ctx.Err() != nil || s.stalling() {
				continue // the run is over, or systemd does not read: drop
			}
			for _, k := range m.Dropped {
				if _, dup := told.LoadOrStore(k, true); !dup {
					s.c.logf("the job's sd_notify %q (PID %d) is not relayed: only guard speaks for the main PID", k, m.PID)
				}
			}
			s.pass(m)
		}
	})
}

// pass sends one message of the job's on: WATCHDOG=1 and READY=1 only
// while the lock is held and healthy.
func (s *sdNotifier) pass(m daemon.RelayMessage) {
	held := s.phase.Load() == phaseHeld
	var keep []string
	for _, l := range strings.Split(m.State, "\n") {
		switch {
		case l == "WATCHDOG=1":
			s.jobWatchdog.Store(true)
			if !held {
				continue
			}
		case l == "READY=1" && !held:
			s.c.logf("the job's READY=1 (PID %d) is not relayed: guard does not hold the lock", m.PID)
			continue
		}
		keep = append(keep, l)
	}
	s.send(keep...)
}

// choices lists the words, for help, the man page and completions.
func (f choiceFlag) choices() []string { return f.words }
