package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ClockTicks is USER_HZ, the unit of the start time in /proc/PID/stat. It is
// 100 on every Linux ABI.
const ClockTicks = 100

// DefaultPIDMax is used when /proc/sys/kernel/pid_max cannot be read: the
// largest value the kernel accepts (PID_MAX_LIMIT on 64-bit systems).
const DefaultPIDMax = 1 << 22

// ErrGone reports that the process does not exist (any more).
var ErrGone = errors.New("no such process")

// Stat holds the fields of /proc/PID/stat that guard uses.
type Stat struct {
	PID        int
	Comm       string
	State      byte // 'R', 'S', 'D', 'Z', 'T', 'X', ...
	PPID       int
	PGID       int
	SID        int
	TTY        int    // tty_nr; 0 means no controlling terminal
	StartTicks uint64 // start time in clock ticks since boot
}

// Zombie reports whether the process has exited but has not been reaped.
func (s Stat) Zombie() bool { return s.State == 'Z' || s.State == 'X' }

// ReadStat reads /proc/PID/stat. A process that does not exist yields an
// error that matches ErrGone.
func ReadStat(pid int) (Stat, error) {
	if pid <= 0 {
		return Stat{}, fmt.Errorf("read stat of pid %d: %w", pid, ErrGone)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, errSRCH) {
			return Stat{}, fmt.Errorf("read stat of pid %d: %w", pid, ErrGone)
		}
		return Stat{}, err
	}
	return ParseStat(b)
}

// ParseStat parses the contents of a /proc/PID/stat file. The command name
// may hold spaces and parentheses; it ends at the last ')'.
func ParseStat(b []byte) (Stat, error) {
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 1 || closing < open {
		return Stat{}, errors.New("parse /proc stat: malformed")
	}
	var s Stat
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return Stat{}, fmt.Errorf("parse /proc stat: pid: %w", err)
	}
	s.PID = pid
	s.Comm = string(b[open+1 : closing])
	f := strings.Fields(string(b[closing+1:]))
	// f[0] is field 3 (state); field N is f[N-3].
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, errors.New("parse /proc stat: too few fields")
	}
	s.State = f[0][0]
	ints := []*int{&s.PPID, &s.PGID, &s.SID, &s.TTY}
	for i, p := range ints {
		if *p, err = strconv.Atoi(f[1+i]); err != nil {
			return Stat{}, fmt.Errorf("parse /proc stat: field %d: %w", 4+i, err)
		}
	}
	if s.StartTicks, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return Stat{}, fmt.Errorf("parse /proc stat: starttime: %w", err)
	}
	return s, nil
}

var (
	bootOnce sync.Once
	bootID   string
	bootErr  error
)

// BootID returns the kernel's boot id, which changes at every boot.
func BootID() (string, error) {
	bootOnce.Do(func() {
		b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
		if err != nil {
			bootErr = err
			return
		}
		bootID = strings.TrimSpace(string(b))
	})
	return bootID, bootErr
}

// pidMaxCache holds pid_max and when it was read: PID parsing is on hot
// paths, and pid_max changes seldom if ever.
var pidMaxCache struct {
	sync.Mutex
	n    int
	read time.Time
}

// PIDMax returns the largest PID the kernel hands out plus one
// (/proc/sys/kernel/pid_max), or DefaultPIDMax when that cannot be read. The
// value is read again at most every ten seconds.
func PIDMax() int {
	c := &pidMaxCache
	c.Lock()
	defer c.Unlock()
	if c.n != 0 && time.Since(c.read) < 10*time.Second {
		return c.n
	}
	c.n, c.read = readPIDMax(), time.Now()
	return c.n
}

func readPIDMax() int {
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		return DefaultPIDMax
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 2 || n > DefaultPIDMax {
		return DefaultPIDMax
	}
	return n
}

// ValidPID reports whether pid may name a process guard is willing to act on:
// 2 <= pid < pid_max. PID 1 (init) and non-positive values (process groups,
// "every process") are never valid.
func ValidPID(pid int) bool {
	return pid >= 2 && pid < PIDMax()
}
