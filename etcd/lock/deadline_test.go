package etcdlock

import (
	"errors"
	"testing"
	"time"
)

// TestDeadlines walks the deadline state machine on a fake clock.
func TestDeadlines(t *testing.T) {
	const s = time.Second
	closed := func(ch chan struct{}) bool { return closedWithin(ch, 0) }
	d := newDeadlines(100*s, 10*s, 1*s, 2*s) // D = 100 + 9.9 - 1 = 108.9
	if d.deadline != 100*s+8900*time.Millisecond {
		t.Fatalf("D = %v", d.deadline)
	}
	d.check(109 * s) // not armed: only Lost may close
	if closed(d.jeopardy) || !closed(d.ending) || !closed(d.lost) || !errors.Is(d.cause(), ErrPartition) {
		t.Fatalf("unarmed past D: jeopardy %v ending %v lost %v err %v", closed(d.jeopardy), closed(d.ending), closed(d.lost), d.cause())
	}

	d = newDeadlines(100*s, 10*s, 1*s, 2*s)
	d.arm(101 * s)
	d.acked(103*s, 10*s) // D = 111.9, jeopardy at 108, ending at 109.9
	d.acked(102*s, 10*s) // an older request's answer: no move back
	d.check(107900 * time.Millisecond)
	if closed(d.jeopardy) || closed(d.ending) {
		t.Fatal("closed too early")
	}
	d.check(108 * s)
	if !closed(d.jeopardy) || closed(d.ending) {
		t.Fatal("jeopardy not at S + TTL/2")
	}
	d.check(109900 * time.Millisecond)
	if !closed(d.ending) || closed(d.lost) {
		t.Fatal("ending not at D - grace, or lost too early")
	}
	d.acked(110*s, 10*s) // renewed: D = 118.9, but Ending stays closed
	d.check(112 * s)
	if closed(d.lost) || !closed(d.ending) {
		t.Fatal("after a renewal: lost closed or ending reopened")
	}
	d.lose(ErrExpired)
	d.lose(ErrRevoked)
	if !closed(d.lost) || !errors.Is(d.cause(), ErrExpired) {
		t.Fatalf("lose: %v", d.cause())
	}
}
