package daemon

import (
	"context"
	"time"
)

// ReloadStats is a snapshot of a Control's reload counters.
type ReloadStats struct {
	Total       uint64    // reloads attempted and finished, failed ones included
	Failed      uint64    // reloads whose Reload returned an error
	LastSuccess time.Time // end of the last successful reload; zero if none yet
}

// ReloadStats returns the reload counters. It reads atomics only, never blocks and is safe
// to call from any goroutine (health handlers). The snapshot is stale as soon as it is
// returned, and the fields are read one after another: a reload that finishes meanwhile
// may show in one field and not yet in another (Failed <= Total always holds).
func (c *Control) ReloadStats() ReloadStats {
	failed := c.failed.Load() // before total: Failed <= Total always holds
	s := ReloadStats{Total: c.total.Load(), Failed: failed}
	if ns := c.lastSuccess.Load(); ns != 0 {
		s.LastSuccess = time.Unix(0, ns)
	}
	return s
}

// RecordReload counts a reload done outside Run, e.g. a SIGHUP forwarded to a job
// (job.Spec.OnSignal): err nil counts a success, non-nil a failure (and
// logs it). It sends nothing to systemd.
func (c *Control) RecordReload(err error) {
	c.count(err)
	if err != nil {
		c.log().Error("reload failed", "err", err)
	}
}

// count adds one reload to the counters.
func (c *Control) count(err error) {
	if err != nil {
		c.total.Add(1) // total first, so readers never see Failed > Total
		c.failed.Add(1)
		return
	}
	c.lastSuccess.Store(time.Now().UnixNano())
	c.total.Add(1)
}

// requestReload records a pending reload; requests that arrive while one is pending
// coalesce into it.
func (c *Control) requestReload() {
	if c.Reload == nil {
		c.log().Info("SIGHUP ignored: nothing to reload")
		return
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// reloader serves reload requests one at a time, once the program is ready, until ctx is
// done.
func (c *Control) reloader(ctx context.Context) {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
			if ctx.Err() != nil {
				return
			}
			c.reload(ctx)
		}
	}
}

// reload runs Reload once, framed by RELOADING=1 and READY=1 for systemd, and counts it.
func (c *Control) reload(ctx context.Context) {
	log := c.log()
	if _, err := Reloading(); err != nil {
		log.Warn("sd_notify RELOADING=1 failed", "err", err)
	}
	log.Info("reloading")
	err := c.Reload(ctx)
	c.count(err)
	if err != nil {
		log.Error("reload failed; keeping the previous configuration", "err", err)
		_, err = Notify("READY=1\nSTATUS=" + oneLine("reload failed: "+err.Error()))
	} else {
		log.Info("reloaded")
		_, err = NotifyReady()
	}
	if err != nil {
		log.Warn("sd_notify READY=1 failed", "err", err)
	}
}
