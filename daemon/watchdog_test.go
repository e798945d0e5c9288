//go:build linux

package daemon

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"
)

func TestWatchdogInterval(t *testing.T) {
	me := strconv.Itoa(os.Getpid())
	tests := []struct {
		name, usec, pid string
		want            time.Duration
		bad             bool
	}{
		{name: "unset"},
		{name: "for us", usec: "500000", pid: me, want: 500 * time.Millisecond},
		{name: "no pid", usec: "2000000", want: 2 * time.Second},
		{name: "for another process", usec: "500000", pid: "1"},
		{name: "malformed usec", usec: "soon", bad: true},
		{name: "zero usec", usec: "0", bad: true},
		{name: "malformed pid", usec: "500000", pid: "me", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(WatchdogUsecEnv, tt.usec)
			t.Setenv(WatchdogPIDEnv, tt.pid)
			got, err := WatchdogInterval()
			if got != tt.want || (err != nil) != tt.bad {
				t.Errorf("WatchdogInterval() = %v, %v; want %v, error %v", got, err, tt.want, tt.bad)
			}
		})
	}
}

// TestWatchdogPingRate counts WATCHDOG=1 pings over a window: one at once, then one per
// half interval. Only a gross deviation fails (a loaded machine delays ticks, never adds
// them).
func TestWatchdogPingRate(t *testing.T) {
	if testing.Short() {
		t.Skip("counts pings over 1.5s")
	}
	conn := fakeSystemd(t)
	const interval = 200 * time.Millisecond
	t.Setenv(WatchdogUsecEnv, strconv.FormatInt(interval.Microseconds(), 10))
	t.Setenv(WatchdogPIDEnv, strconv.Itoa(os.Getpid()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- Watchdog(ctx) }()
	pings := 0
	buf := make([]byte, 64)
	for window := start.Add(1500 * time.Millisecond); time.Now().Before(window); {
		conn.SetReadDeadline(window)
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		if string(buf[:n]) != "WATCHDOG=1" {
			t.Fatalf("got %q, want WATCHDOG=1", buf[:n])
		}
		pings++
	}
	elapsed := time.Since(start)
	cancel()
	if err := recv(t, "Watchdog to return", done); err != nil {
		t.Errorf("Watchdog = %v", err)
	}
	max := 2 + int(elapsed/(interval/2))
	if pings < 3 || pings > max {
		t.Errorf("%d pings in %v, want between 3 and %d (one per %v)", pings, elapsed, max, interval/2)
	}
}

func TestWatchdogOffReturnsAtOnce(t *testing.T) {
	t.Setenv(WatchdogUsecEnv, "")
	if err := Watchdog(context.Background()); err != nil {
		t.Errorf("Watchdog without WATCHDOG_USEC = %v", err)
	}
	t.Setenv(WatchdogUsecEnv, "bogus")
	if err := Watchdog(context.Background()); err == nil {
		t.Error("Watchdog with malformed WATCHDOG_USEC: no error")
	}
}
