package etcdlock

import (
	"time"

	"golang.org/x/sys/unix"
)

// boottime reads CLOCK_BOOTTIME: monotonic, and unlike CLOCK_MONOTONIC (which
// Go's timers and time.Now's monotonic reading use) it keeps counting while
// the machine is suspended. The etcd server's clock does not stop when this
// machine sleeps, so every deadline of a lease is kept on this clock.
func boottime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		// CLOCK_BOOTTIME exists since Linux 2.6.39; failing to read it
		// means the deadlines cannot be kept at all.
		panic("clock_gettime(CLOCK_BOOTTIME): " + err.Error())
	}
	return time.Duration(ts.Nano())
}
