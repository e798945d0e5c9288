package health

import (
	"sync"
	"testing"
	"time"
)

func TestStateZeroValue(t *testing.T) {
	var st State
	if got := st.LockState(); got != (LockState{}) {
		t.Errorf("zero LockState = %+v", got)
	}
	if got := st.ReloadState(); got != (ReloadState{}) {
		t.Errorf("zero ReloadState = %+v", got)
	}
	if st.Ready() {
		t.Error("zero State is ready")
	}
}

func TestStateTransitions(t *testing.T) {
	var st State
	st.SetLockPath("/l")
	st.Lost() // not held: nothing to lose
	if ls := st.LockState(); ls.Lost || st.load().lostTotal != 0 {
		t.Errorf("Lost while not held changed state: %+v", ls)
	}
	st.Waiting()
	if ls := st.LockState(); !ls.Waiting || ls.Held {
		t.Errorf("after Waiting: %+v", ls)
	}
	st.Acquired(10, 3, t0, -time.Second)
	want := LockState{Path: "/l", Held: true, PID: 10, Since: t0, Token: 3}
	if ls := st.LockState(); ls != want {
		t.Errorf("after Acquired: %+v, want %+v", ls, want)
	}
	st.Lost()
	st.Lost()
	if ls := st.LockState(); !ls.Held || !ls.Lost || st.load().lostTotal != 1 {
		t.Errorf("after Lost twice: %+v, lost total %d, want held, lost, 1", ls, st.load().lostTotal)
	}
	st.Released()
	if ls := st.LockState(); ls != (LockState{Path: "/l"}) {
		t.Errorf("after Released: %+v", ls)
	}
	st.Acquired(11, 4, t1, 0)
	st.Lost()
	if n := st.load().lostTotal; n != 2 {
		t.Errorf("lost total after a second lost hold = %d, want 2", n)
	}
	if n := st.load(); n.acquisitions != 2 || n.waitCount != 2 || n.waitSum != 0 || n.waitBucket[0] != 2 {
		t.Errorf("wait histogram: count %d sum %v first bucket %d, want 2, 0, 2", n.waitCount, n.waitSum, n.waitBucket[0])
	}
}

// TestStateConcurrent: concurrent writers lose no update while readers
// (the handlers' path) run; run with -race.
func TestStateConcurrent(t *testing.T) {
	const writers, each = 8, 500
	var st State
	h := NewHandler(Options{Lock: &st, Reloads: &st, Ready: st.Ready, Gatherer: NewRegistry(&st, BuildInfo{})})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					serve(t, h, "GET", "/healthz")
					_ = st.LockState()
				}
			}
		})
	}
	var ww sync.WaitGroup
	for w := range writers {
		ww.Go(func() {
			for i := range each {
				st.Contended()
				st.Acquired(w, uint64(i), time.Now(), time.Millisecond)
				st.Reload(i%2 == 0, time.Now())
				st.JobFinished(JobRun{Result: ResultSuccess})
				st.SetReady(i%2 == 0)
			}
		})
	}
	ww.Wait()
	close(stop)
	wg.Wait()
	n := st.load()
	if n.contended != writers*each || n.acquisitions != writers*each || n.reloads.Total != writers*each ||
		n.reloads.Failed != writers*each/2 || n.jobRuns[0] != writers*each {
		t.Errorf("lost updates: contended %d acquisitions %d reloads %d/%d runs %d, want %d each (failed half)",
			n.contended, n.acquisitions, n.reloads.Total, n.reloads.Failed, n.jobRuns[0], writers*each)
	}
}
