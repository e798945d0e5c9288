package health

import (
	"sync/atomic"
	"time"
)

// LockState is what a [LockReporter] knows about one lock at one moment.
// It is a copy: it goes stale as soon as it is returned.
type LockState struct {
	// Path is the lock file's path, as given by the program ("" if unset).
	Path string
	// Held is true while this process holds the lock. It stays true after
	// the lock is lost (see Lost) until the program releases it.
	Held bool
	// Waiting is true while a standby waits for a busy lock.
	Waiting bool
	// PID is the holder's PID (this process) while Held, else 0.
	PID int
	// Since is when the lock was acquired; zero when not held.
	Since time.Time
	// Token is the fencing token of the current hold; 0 when not held.
	Token uint64
	// Lost is true when, while held, the path no longer names the locked
	// file (deleted or replaced underneath). A lost lock is not ready.
	Lost bool
}

// LockReporter reports the lock's state. Implementations must answer from
// memory, quickly, without I/O and without waiting on any lock that a
// blocking call (flock, a write to the lock file) may hold.
type LockReporter interface {
	LockState() LockState
}

// ReloadState counts reloads (SIGHUP) since the process started. It is a copy
// and goes stale as soon as it is returned.
type ReloadState struct {
	// Total counts every reload attempt; Failed counts those that failed
	// (Failed <= Total).
	Total, Failed uint64
	// LastSuccess is when the last successful reload finished; zero if none.
	LastSuccess time.Time
}

// ReloadReporter reports reload counts, under the same rules as
// [LockReporter]: from memory, no I/O, no blocking.
type ReloadReporter interface {
	ReloadState() ReloadState
}

// waitBuckets are the upper bounds, in seconds, of guard_lock_wait_seconds.
// A hot standby may wait for days, hence the long tail.
var waitBuckets = [...]float64{0.001, 0.01, 0.1, 1, 10, 60, 600, 3600, 86400}

// snapshot is one immutable view of everything State knows. It is replaced
// whole, never modified after it is published.
type snapshot struct {
	lock    LockState
	reloads ReloadState

	acquisitions, contended, lostTotal uint64
	waitCount                          uint64
	waitSum                            time.Duration
	waitBucket                         [len(waitBuckets)]uint64 // not cumulative

	lease     LeaseState
	rttCount  uint64
	rttSum    time.Duration
	rttBucket [len(rttBuckets)]uint64 // not cumulative

	leaseLost                    [len(leaseReasons)]uint64
	leaseSignals                 [len(leaseSignals)]uint64
	leaseSlack                   time.Duration
	leaseSlackSet                bool
	serverVersion, serverCluster string

	jobRunning  bool
	jobRuns     [len(results)]uint64 // indexed like results
	jobRan      bool                 // a run finished that was not skipped
	jobExitCode int
	jobDuration time.Duration
	jobLastSucc time.Time
	jobStart    time.Time // when the current or last job started
	jobLastRun  time.Time // when the last run that ran ended
	jobLastFail time.Time // when the last run that did not succeed ended
}

var zeroSnapshot snapshot

// State is a concurrency-safe record of a guarded program's lock, reloads,
// readiness and job runs, written by the program and read by the health
// handlers and metrics. Every method is safe for concurrent use and lock-free:
// writers publish a new immutable snapshot with compare-and-swap, readers load
// it atomically. The zero value is ready to use (no lock path, not held, not
// ready) and must not be copied after first use.
//
// State satisfies [LockReporter] and [ReloadReporter]; its Ready method fits
// [Options].Ready.
type State struct {
	p     atomic.Pointer[snapshot]
	ready atomic.Bool
}

func (s *State) load() *snapshot {
	if p := s.p.Load(); p != nil {
		return p
	}
	return &zeroSnapshot
}

// update applies f to a copy of the current snapshot and publishes it. f may
// run more than once under contention, so it must only modify its argument.
func (s *State) update(f func(*snapshot)) {
	for {
		old := s.p.Load()
		n := zeroSnapshot
		if old != nil {
			n = *old
		}
		f(&n)
		if s.p.CompareAndSwap(old, &n) {
			return
		}
	}
}

// SetLockPath records the lock file's path, reported in /healthz. It changes
// nothing else.
func (s *State) SetLockPath(path string) {
	s.update(func(n *snapshot) { n.lock.Path = path })
}

// Waiting records that the program waits for a busy lock (a hot standby):
// live but not ready. It does not count as contention; call [State.Contended]
// for that.
func (s *State) Waiting() {
	s.update(func(n *snapshot) { n.lock.Waiting = true })
}

// Acquired records that the lock was taken by pid with fencing token token at
// since, after waiting for waited (0 if it was free). It ends any wait,
// clears Lost, counts an acquisition and observes waited in
// guard_lock_wait_seconds (negative waits count as 0).
func (s *State) Acquired(pid int, token uint64, since time.Time, waited time.Duration) {
	waited = max(waited, 0)
	s.update(func(n *snapshot) {
		n.lock.Held, n.lock.Waiting, n.lock.Lost = true, false, false
		n.lock.PID, n.lock.Token, n.lock.Since = pid, token, since
		n.acquisitions++
		n.waitCount++
		n.waitSum += waited
		for i, ub := range waitBuckets {
			if waited.Seconds() <= ub {
				n.waitBucket[i]++
				break
			}
		}
	})
}

// Contended counts one attempt that found the lock busy
// (guard_lock_contended_total). It changes no state: a run that then gives up
// calls nothing more, a standby calls [State.Waiting].
func (s *State) Contended() {
	s.update(func(n *snapshot) { n.contended++ })
}

// Lost records that the path no longer names the locked file while the lock
// is held, making the program not ready. It counts guard_lock_lost_total once
// per hold, however often it is called; it does nothing when not held.
func (s *State) Lost() {
	s.update(func(n *snapshot) {
		if n.lock.Held && !n.lock.Lost {
			n.lock.Lost = true
			n.lostTotal++
		}
	})
}

// Released records that the lock is no longer held, nor waited for. It
// clears PID, Since, Token and Lost and keeps Path and all counters.
func (s *State) Released() {
	s.update(func(n *snapshot) {
		n.lock = LockState{Path: n.lock.Path}
		n.lease = LeaseState{Renewals: n.lease.Renewals, Failures: n.lease.Failures}
	})
}

// Reload counts one reload attempt that finished at at; ok says whether it
// succeeded. A success sets ReloadState.LastSuccess to at.
func (s *State) Reload(ok bool, at time.Time) {
	s.update(func(n *snapshot) {
		n.reloads.Total++
		if ok {
			n.reloads.LastSuccess = at
		} else {
			n.reloads.Failed++
		}
	})
}

// SetReady records whether the program says it is ready (for guard run: the
// job has started). Readiness also needs the lock held and not lost.
func (s *State) SetReady(ready bool) { s.ready.Store(ready) }

// Ready reports the last value given to [State.SetReady] (false initially).
// It does not look at the lock.
func (s *State) Ready() bool { return s.ready.Load() }

// LockState returns a copy of the lock's state; see [LockReporter].
func (s *State) LockState() LockState { return s.load().lock }

// ReloadState returns a copy of the reload counts; see [ReloadReporter].
func (s *State) ReloadState() ReloadState { return s.load().reloads }
