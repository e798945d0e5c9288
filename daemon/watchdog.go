package daemon

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Environment variables systemd sets when WatchdogSec= is configured.
const (
	WatchdogUsecEnv = "WATCHDOG_USEC"
	WatchdogPIDEnv  = "WATCHDOG_PID"
)

// WatchdogInterval reports the watchdog timeout systemd expects this process to honour:
// the program must send "WATCHDOG=1" more often than that (Watchdog does, at half of it).
//
// Results:
//   - (0, nil): no watchdog: $WATCHDOG_USEC is unset or empty, or $WATCHDOG_PID names
//     another process (the variables were inherited from a parent, not meant for us).
//   - (0, err): $WATCHDOG_USEC is not a positive integer, or $WATCHDOG_PID is not a PID.
//   - (d, nil): the watchdog is on with timeout d.
//
// It reads the environment on every call; nothing is cached and nothing is unset.
func WatchdogInterval() (time.Duration, error) {
	usec := os.Getenv(WatchdogUsecEnv)
	if usec == "" {
		return 0, nil
	}
	if pid := os.Getenv(WatchdogPIDEnv); pid != "" {
		n, err := strconv.Atoi(pid)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("sd_watchdog: malformed %s %q", WatchdogPIDEnv, pid)
		}
		if n != os.Getpid() {
			return 0, nil
		}
	}
	n, err := strconv.ParseInt(usec, 10, 64)
	if err != nil || n <= 0 || n > int64(time.Duration(1<<63-1)/time.Microsecond) {
		return 0, fmt.Errorf("sd_watchdog: malformed %s %q", WatchdogUsecEnv, usec)
	}
	return time.Duration(n) * time.Microsecond, nil
}

// Watchdog keeps systemd's watchdog fed: when WatchdogInterval reports a timeout it sends
// "WATCHDOG=1" at once and then every half timeout until ctx is done, and returns nil.
// Without a watchdog it returns nil at once; a malformed environment returns the error
// from WatchdogInterval. A failed send does not stop the loop (the next tick retries;
// systemd acts if pings stay missing); the last send error, if any, is returned when ctx
// is done.
//
// Watchdog proves only that this goroutine runs. Programs that want the watchdog to catch
// a wedged main loop should send WATCHDOG=1 from that loop instead, at the same rate.
func Watchdog(ctx context.Context) error {
	return WatchdogWhile(ctx, func() bool { return true })
}

// WatchdogWhile is Watchdog with a condition: at each tick (half the timeout, the first
// one at once) it sends "WATCHDOG=1" only if ok() reports true, so that systemd's
// watchdog fires once ok has said false for a whole timeout (a lock lost, a lease in
// jeopardy). ok runs on WatchdogWhile's goroutine and must not block. Results as for
// Watchdog.
func WatchdogWhile(ctx context.Context, ok func() bool) error {
	d, err := WatchdogInterval()
	if err != nil || d == 0 {
		return err
	}
	return watchdogLoop(ctx, d/2, ok)
}

// watchdogLoop pings every period, while ok says so, until ctx is done.
func watchdogLoop(ctx context.Context, period time.Duration, ok func() bool) error {
	if period <= 0 {
		period = time.Millisecond
	}
	t := time.NewTicker(period)
	defer t.Stop()
	var last error
	for {
		if ok() {
			if _, err := Notify("WATCHDOG=1"); err != nil {
				last = err
			}
		}
		select {
		case <-ctx.Done():
			return last
		case <-t.C:
		}
	}
}
