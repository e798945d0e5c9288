package proc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

var errSRCH = syscall.ESRCH

// PIDNamespace returns the inode number of the PID namespace of pid (0 means
// this process), as in the link /proc/PID/ns/pid -> "pid:[INODE]".
func PIDNamespace(pid int) (uint64, error) {
	p := "/proc/self/ns/pid"
	if pid != 0 {
		p = "/proc/" + strconv.Itoa(pid) + "/ns/pid"
	}
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
			return 0, fmt.Errorf("pid namespace of %d: %w", pid, ErrGone)
		}
		return 0, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	return st.Ino, nil
}

// SinceBoot converts a start time in clock ticks to seconds since boot.
func SinceBoot(ticks uint64) float64 { return float64(ticks) / ClockTicks }

// BootTime returns CLOCK_BOOTTIME (time since boot, including suspend) in
// seconds, the clock that start times are measured on.
func BootTime() float64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}
