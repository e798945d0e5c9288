package pidfile

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/internal/proc"
)

// State says what the PID in a PID file names now.
type State int

const (
	// Unknown: it cannot be verified -- /proc is hidden or belongs to
	// another PID namespace, the PID names a thread, the file's time is
	// in the future, or reading /proc failed. The zero State.
	Unknown State = iota
	// Running: a process with the PID exists and started no later than the
	// file was last written, so it can be the process that wrote it.
	Running
	// Dead: no process has the PID.
	Dead
	// Zombie: the process has exited but its parent has not reaped it.
	Zombie
	// Reused: a process has the PID but started after the file was last
	// written, so it cannot be the process the file was written for.
	Reused
)

var stateNames = [...]string{"unknown", "running", "dead", "zombie", "reused"}

// String returns "unknown", "running", "dead", "zombie" or "reused".
func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "State(" + strconv.Itoa(int(s)) + ")"
	}
	return stateNames[s]
}

// Info is what Inspect found: the file, and the state of its PID at that
// moment. It goes stale at once; Process re-checks everything.
type Info struct {
	Snapshot
	State State
	// StartTicks is the process's start time (clock ticks since boot, field
	// 22 of /proc/PID/stat) when State is Running, Zombie or Reused; else 0.
	StartTicks uint64
	// Reason says, in one line, how State was decided.
	Reason string
}

// reuseSlack absorbs the granularity of file timestamps: the kernel stamps
// files from a clock that lags by up to one jiffy (10 ms at HZ=100), so a
// file written within a few milliseconds of its process starting may look
// older than the process.
const reuseSlack = 20 * time.Millisecond

// Inspect reads the PID file at path (see Read, whose errors it returns)
// and decides the State of its PID:
//
//   - Dead when no process has the PID (checked with pidfd_open(2), which,
//     unlike /proc, is not hidden by the hidepid mount option);
//   - Zombie when the process has exited but is not reaped yet;
//   - Reused when the process started after the file was last written;
//   - Running when it started no later than that (the one writer it can be);
//   - Unknown when that cannot be decided; Reason says why.
//
// Start versus write time: the process's start time is on the boot clock
// (CLOCK_BOOTTIME), the file's mtime on the wall clock. The mtime is moved
// to the boot clock as BootTime() - (time.Now() - mtime), and the PID is
// Reused if the process started more than 20 ms (timestamp granularity)
// after that. This assumes the wall clock was not stepped between the write
// and now:
//
//   - a step forward (NTP correcting a clock that was behind at boot, as on
//     machines without an RTC) makes the file look older than it is; a
//     process that wrote its PID file shortly after starting may then be
//     reported Reused. That is the safe direction: nothing is signalled, and
//     rewriting the PID file (restarting the daemon) clears it.
//   - a step backward makes the file look younger, and a process that took
//     the PID shortly after the file was written may be reported Running.
//     That is the unsafe direction. A step back that puts the mtime in the
//     future is detected and reported as Unknown; a smaller one is not.
//
// File systems with 1-second timestamps can report a process that wrote its
// file within a second of starting as Reused (the safe direction).
//
// A PID file written in another PID namespace names a PID there, and
// nothing in a classic PID file says so: Inspect reports what the number
// means in the caller's namespace. It does report Unknown when /proc is not
// the caller's (a /proc mounted from another namespace).
func Inspect(path string) (*Info, error) {
	s, err := Read(path)
	if err != nil {
		return nil, err
	}
	info := &Info{Snapshot: *s}
	info.State, info.StartTicks, info.Reason = check(s.PID, s.ModTime)
	return info, nil
}

// check decides the State of pid for a file last written at mtime.
func check(pid int, mtime time.Time) (State, uint64, string) {
	if err := procIsOurs(); err != nil {
		return Unknown, 0, err.Error()
	}
	// pidfd_open looks the PID up in our namespace whatever /proc shows and
	// refuses threads; its pidfd then tells an exited process from one that
	// /proc hides.
	fd, err := unix.PidfdOpen(pid, 0)
	switch {
	case errors.Is(err, unix.ESRCH):
		return Dead, 0, "no process has this PID"
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT): // by kernel version
		return Unknown, 0, "the PID names a thread, not a process"
	case errors.Is(err, unix.ENOSYS):
		fd = -1 // kernel before 5.3: rely on /proc alone
	case err != nil:
		return Unknown, 0, fmt.Sprintf("pidfd_open: %v", err)
	default:
		defer unix.Close(fd)
	}
	st, err := proc.ReadStat(pid)
	if errors.Is(err, proc.ErrGone) {
		if fd < 0 || exited(fd) {
			return Dead, 0, "no process has this PID"
		}
		return Unknown, 0, "the process exists but /proc hides it (hidepid?)"
	}
	if err != nil {
		return Unknown, 0, err.Error()
	}
	if st.Zombie() {
		return Zombie, st.StartTicks, "the process has exited; its parent has not reaped it"
	}
	state, reason := classify(st.StartTicks, mtime, time.Now(), proc.BootTime())
	return state, st.StartTicks, reason
}

// classify compares a start time (ticks since boot) with a file's mtime,
// given the wall clock and boot clock (seconds) read at the same moment.
func classify(startTicks uint64, mtime, wallNow time.Time, bootNow float64) (State, string) {
	age := wallNow.Sub(mtime)
	if age < -reuseSlack {
		return Unknown, fmt.Sprintf("the file was modified %v in the future: the clock was set back since, so PID reuse cannot be ruled out",
			(-age).Round(time.Millisecond))
	}
	written := bootNow - age.Seconds()
	started := proc.SinceBoot(startTicks)
	after := time.Duration((started - written) * float64(time.Second))
	if after > reuseSlack {
		return Reused, fmt.Sprintf("the process started %v after the file was written: the PID was reused",
			after.Round(time.Millisecond))
	}
	return Running, "the process started before the file was written"
}

// exited reports whether the process behind a pidfd has exited.
func exited(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0
}

// procIsOurs checks that /proc shows this process's PID namespace.
func procIsOurs() error {
	self, err := os.Readlink("/proc/self")
	if err != nil {
		return fmt.Errorf("cannot use /proc: %v", err)
	}
	if self != strconv.Itoa(os.Getpid()) {
		return errors.New("/proc belongs to another PID namespace")
	}
	return nil
}
