package health

import "time"

// LeaseState is what State knows of a renewed lease (a lock kept in etcd,
// which the server takes away unless renewed). It is a copy and goes stale
// as soon as it is returned.
type LeaseState struct {
	// Active is true from the first renewal report of a hold until the lock
	// is released.
	Active bool
	// TTL is the lease's time to live as the server last granted it.
	TTL time.Duration
	// Deadline is when the job's whole tree is killed unless a renewal
	// succeeds before: the last acknowledged renewal's send time + TTL,
	// less the clock-rate bound and the margin.
	Deadline time.Time
	// Renewals and Failures count acknowledged and failed renewals since the
	// process started.
	Renewals, Failures uint64
	// Jeopardy is true once renewal was overdue during this hold: the
	// program is not ready.
	Jeopardy bool
}

// rttBuckets are the upper bounds, in seconds, of
// guard_lease_renewal_rtt_seconds: loopback to a slow WAN.
var rttBuckets = [...]float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// LeaseRenewal records one renewal attempt of a renewed lease: ok when the
// server acknowledged it, its round trip rtt, the ttl granted and the
// deadline that now applies. It marks the lease active.
func (s *State) LeaseRenewal(ok bool, rtt, ttl time.Duration, deadline time.Time) {
	s.update(func(n *snapshot) {
		n.lease.Active, n.lease.TTL, n.lease.Deadline = true, ttl, deadline
		if !ok {
			n.lease.Failures++
			return
		}
		n.lease.Renewals++
		n.rttCount++
		n.rttSum += rtt
		for i, ub := range rttBuckets {
			if rtt.Seconds() <= ub {
				n.rttBucket[i]++
				break
			}
		}
	})
}

// LeaseJeopardy records that renewal of the held lease is overdue.
func (s *State) LeaseJeopardy() {
	s.update(func(n *snapshot) { n.lease.Jeopardy = true })
}

// LeaseState returns a copy of the lease's state.
func (s *State) LeaseState() LeaseState { return s.load().lease }
