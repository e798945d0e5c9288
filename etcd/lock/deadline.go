package etcdlock

import (
	"fmt"
	"sync"
	"time"
)

// Rho bounds the rate difference between this machine's clock and the etcd
// leader's (0.5 %, far beyond what NTP-disciplined or even free-running
// quartz clocks drift). A lease granted for TTL is held by the server for at
// least TTL of its time, which is at least TTL*(1-2*Rho) of ours.
const Rho = 0.005

// deadlines is the safety core of a lease: from the send time S of the last
// acknowledged renewal (or of the grant) and the TTL the server answered
// with, D = S + TTL*(1-2*Rho) - margin is a moment before which the server
// cannot have expired the lease. Times are CLOCK_BOOTTIME readings.
//
// jeopardy closes at S + TTL/2, ending at D - grace, lost at D, or both at
// once on lose. Once closed a channel stays closed. Before arm, only lost
// can close (a contender that waits has no job to stop yet).
type deadlines struct {
	margin, grace time.Duration

	mu       sync.Mutex
	sent     time.Duration // S: send time of the last acknowledged renewal
	ttl      time.Duration // TTL of the last answer
	deadline time.Duration // D
	armed    bool
	err      error

	jeopardy, ending, lost     chan struct{}
	jeoOnce, endOnce, lostOnce sync.Once
}

func newDeadlines(sent, ttl, margin, grace time.Duration) *deadlines {
	d := &deadlines{margin: margin, grace: grace, jeopardy: make(chan struct{}),
		ending: make(chan struct{}), lost: make(chan struct{})}
	d.sent, d.ttl, d.deadline = sent, ttl, d.deadlineOf(sent, ttl)
	return d
}

func (d *deadlines) deadlineOf(sent, ttl time.Duration) time.Duration {
	return sent + time.Duration(float64(ttl)*(1-2*Rho)) - d.margin
}

// acked records a renewal sent at sent (before the request left) that the
// server answered with ttl > 0. An answer to an older request never moves
// the deadline back.
func (d *deadlines) acked(sent, ttl time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dl := d.deadlineOf(sent, ttl); dl > d.deadline {
		d.sent, d.ttl, d.deadline = sent, ttl, dl
	}
}

// arm starts the jeopardy and ending deadlines (the lock is now held) and
// checks them at once.
func (d *deadlines) arm(now time.Duration) {
	d.mu.Lock()
	d.armed = true
	d.mu.Unlock()
	d.check(now)
}

// check closes what is due at now.
func (d *deadlines) check(now time.Duration) {
	d.mu.Lock()
	sent, ttl, dl, armed := d.sent, d.ttl, d.deadline, d.armed
	d.mu.Unlock()
	if armed && now >= sent+ttl/2 {
		d.jeoOnce.Do(func() { close(d.jeopardy) })
	}
	if armed && now >= dl-d.grace {
		d.endOnce.Do(func() { close(d.ending) })
	}
	if now >= dl {
		d.lose(fmt.Errorf("%w: the last acknowledged one was sent %v ago (TTL %v)", ErrPartition,
			(now - sent).Round(time.Millisecond), ttl))
	}
}

// lose closes ending and lost now, with err as the cause (the first cause
// given is kept).
func (d *deadlines) lose(err error) {
	d.lostOnce.Do(func() {
		d.mu.Lock()
		d.err = err
		d.mu.Unlock()
		d.endOnce.Do(func() { close(d.ending) })
		close(d.lost)
	})
}

// cause is the error lose was given, nil while the lease holds.
func (d *deadlines) cause() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// isLost reports whether lost is closed.
func (d *deadlines) isLost() bool {
	select {
	case <-d.lost:
		return true
	default:
		return false
	}
}
