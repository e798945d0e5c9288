package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/guardkit/guard/instance"
)

// remote is a Locker whose holder may run on another host (etcd): stop and
// reload are asked of the holder through the backend, which it watches,
// rather than sent as signals, which only reach this host.
type remote interface {
	instance.Locker
	RequestStop(ctx context.Context, token uint64) error
	RequestReload(ctx context.Context, token uint64) error
	// ForceRelease breaks the lock: the next holder waits out the
	// returned take-over delay; the holder's lease is revoked now.
	ForceRelease(ctx context.Context, token uint64) (time.Duration, error)
}

// openRemote returns the lock the flags name as a remote one, or an error
// for a backend that cannot be controlled from here.
func (lf *lockFlags) openRemote(what string) (remote, error) {
	lk, _, _, err := lf.open(nil)
	if err != nil {
		return nil, err
	}
	rc, ok := lk.(remote)
	if !ok {
		return nil, exitf(exitUsage, "%s: %v", what, errNoBackendControl)
	}
	return rc, nil
}

// remoteHolder returns who holds rc's lock, or (nil, nil) after saying
// that nobody does.
func (c *CLI) remoteHolder(rc remote) (*instance.Holder, error) {
	h, err := rc.Inspect(context.Background())
	if err != nil {
		return nil, err
	}
	switch {
	case h.State == instance.Unknown:
		return nil, exitf(lsbUnknown, "%s: cannot tell who holds the lock: %s", h.Path, h.Reason)
	case h.State != instance.Held:
		fmt.Fprintf(c.stdout, "%s: not running (%s)\n", h.Path, h.Reason)
		return nil, nil
	case h.Record == nil || h.Record.Token == 0:
		return nil, exitf(1, "%s: held, but not by guard (%s); not asking it to stop", h.Path, h.Reason)
	}
	return h, nil
}

// remoteStop asks the holder to stop its job and release the lock, and
// waits until it has (or a new holder took it), for timeout + killWait: the
// holder's own stop sends SIGTERM, then SIGKILL after its --kill-after.
func (c *CLI) remoteStop(rc remote, timeout, killWait time.Duration, force bool) error {
	h, err := c.remoteHolder(rc)
	if h == nil {
		return err
	}
	token := h.Record.Token
	ctx, cancel := context.WithTimeout(context.Background(), timeout+killWait)
	defer cancel()
	if force {
		delay, err := rc.ForceRelease(ctx, token)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "%s: broke the lock of %s (its lease is revoked; the next holder waits %v)\n", h.Path, holderName(h), delay)
		return nil
	}
	if err := rc.RequestStop(ctx, token); err != nil {
		return err
	}
	for {
		now, err := rc.Inspect(ctx)
		if err == nil && (now.State != instance.Held || now.Record == nil || now.Record.Token != token) {
			fmt.Fprintf(c.stdout, "%s: stopped %s\n", h.Path, holderName(h))
			return nil
		}
		select {
		case <-ctx.Done():
			return exitf(1, "%s: %s still holds the lock %v after the stop request", h.Path, holderName(h), timeout+killWait)
		case <-time.After(inspectEvery):
		}
	}
}

// remoteReload asks the holder to forward SIGHUP to its job and waits for
// its answer.
func (c *CLI) remoteReload(rc remote) error {
	h, err := c.remoteHolder(rc)
	if h == nil {
		if err == nil {
			err = silent(lsbNotRunningAction)
		}
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rc.RequestReload(ctx, h.Record.Token); err != nil {
		return exitf(1, "%s: %s: %v", h.Path, holderName(h), err)
	}
	fmt.Fprintf(c.stdout, "%s: %s forwarded SIGHUP to its job\n", h.Path, holderName(h))
	return nil
}

func holderName(h *instance.Holder) string {
	return fmt.Sprintf("PID %d on %s (token %d)", h.Record.PID, h.Record.Host, h.Record.Token)
}
