package etcdlock

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/guardkit/guard/instance"

	"github.com/guardkit/guard/etcd/internal/etcdtest"
)

// TestPartitionLostBeforeStandby is promise 9's test: a holder cut off
// from etcd (its connection blackholed, nothing closed) sees Ending, then
// Lost, and Lost comes before a standby on a working connection gets the
// lock, every round. The slack (standby's acquisition minus our Lost) is
// logged.
func TestPartitionLostBeforeStandby(t *testing.T) {
	rounds, parallel := 20, 4
	if testing.Short() {
		rounds = 4
	}
	var (
		mu    sync.Mutex
		slack []time.Duration
		late  []time.Duration // our Lost minus our deadline D
		floor []time.Duration // earliest possible server expiry (S + TTL) minus our Lost
		wg    sync.WaitGroup
		sem   = make(chan struct{}, parallel)
	)
	for i := range rounds {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s, lt, fl, err := partitionRound(t, i)
			if err != nil {
				t.Errorf("round %d: %v", i, err)
				return
			}
			mu.Lock()
			slack, late, floor = append(slack, s), append(late, lt), append(floor, fl)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(slack) == 0 {
		return
	}
	t.Logf("%d rounds, TTL %v, margin %v", len(slack), testOptions(t).TTL, testOptions(t).Margin)
	t.Logf("slack, standby acquired - our Lost: %s", stats(slack))
	t.Logf("our Lost - our deadline D (tick lateness): %s", stats(late))
	t.Logf("S + TTL (earliest server expiry) - our Lost: %s", stats(floor))
}

func stats(ds []time.Duration) string {
	slices.Sort(ds)
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("min %v, median %v, max %v", r(ds[0]), r(ds[len(ds)/2]), r(ds[len(ds)-1]))
}

// partitionRound runs one round and returns the slack, how late Lost
// closed after the deadline, and how early before S + TTL.
func partitionRound(t *testing.T, i int) (slack, late, floor time.Duration, err error) {
	opts := testOptions(t)
	opts.Name += "-" + string(rune('a'+i))
	p := etcdtest.NewProxy(t, endpoint)
	defer p.Close()
	holder := New(newClient(t, p.Addr()), opts)
	le, err := holder.TryLock(ctxT(t, 10*time.Second))
	if err != nil {
		return 0, 0, 0, err
	}
	h := le.(*Lease)
	standby := New(newClient(t, endpoint), opts)
	got := make(chan time.Duration, 1)
	var sle instance.Lease
	go func() {
		var err error
		sle, err = standby.Lock(ctxT(t, 30*time.Second))
		if err != nil {
			t.Errorf("round %d: standby: %v", i, err)
			close(got)
			return
		}
		got <- boottime()
	}()
	waitQueue(t, holder, 2)
	// Cut at any point of the keepalive cycle.
	time.Sleep(rand.N(opts.TTL / 3))
	p.Blackhole()
	var ending, lost time.Duration
	select {
	case <-h.Ending():
		ending = boottime()
	case <-got:
		return 0, 0, 0, errors.New("the standby got the lock before our Ending")
	}
	select {
	case <-h.Lost():
		lost = boottime()
	case <-got:
		return 0, 0, 0, errors.New("the standby got the lock before our Lost")
	}
	acquired, ok := <-got
	if !ok {
		return 0, 0, 0, errors.New("no standby")
	}
	defer sle.Release()
	if lost-ending < opts.Grace-tick || !errors.Is(h.Err(), ErrPartition) {
		return 0, 0, 0, errors.New("Ending " + (lost - ending).String() + " before Lost, Err " + h.Err().Error())
	}
	if acquired <= lost {
		return 0, 0, 0, errors.New("the standby got the lock before our Lost")
	}
	p.Restore()
	if err := h.Release(); !errors.Is(err, instance.ErrLost) {
		return 0, 0, 0, errors.New("Release after the lease moved on: " + errString(err))
	}
	h.d.mu.Lock()
	sent, ttl, dl := h.d.sent, h.d.ttl, h.d.deadline
	h.d.mu.Unlock()
	return acquired - lost, lost - dl, sent + ttl - lost, nil
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}
