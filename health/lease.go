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

// leaseReasons are the label values of guard_lease_lost_total.
var leaseReasons = [...]string{"deadline", "expired", "revoked", "other"}

// leaseSignals are the label values of guard_lease_tree_signals_total.
var leaseSignals = [...]string{"TERM", "KILL"}

// LeaseLost counts one loss of the renewed lease; reason is one of
// "deadline" (no renewal acknowledged in time), "expired", "revoked" or
// "other" (anything else counts as "other").
func (s *State) LeaseLost(reason string) {
	i := indexOf(leaseReasons[:], reason, len(leaseReasons)-1)
	s.update(func(n *snapshot) { n.leaseLost[i]++ })
}

// LeaseSignal counts one signal sent to the job's whole tree because the
// lease was ending ("TERM") or lost ("KILL").
func (s *State) LeaseSignal(sig string) {
	i := indexOf(leaseSignals[:], sig, -1)
	if i < 0 {
		return
	}
	s.update(func(n *snapshot) { n.leaseSignals[i]++ })
}

// LeaseSlack records, for a job stopped because its lease ended, how long
// before the lease's deadline its whole tree was gone (negative: after).
func (s *State) LeaseSlack(d time.Duration) {
	s.update(func(n *snapshot) { n.leaseSlack, n.leaseSlackSet = d, true })
}

// SetLeaseServer records the lock server's version and cluster id, for
// guard_lease_server_info.
func (s *State) SetLeaseServer(version, cluster string) {
	s.update(func(n *snapshot) { n.serverVersion, n.serverCluster = version, cluster })
}

func indexOf(set []string, v string, otherwise int) int {
	for i, s := range set {
		if s == v {
			return i
		}
	}
	return otherwise
}
