package instance

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockEntry is one flock(2) lock from /proc/locks.
type lockEntry struct {
	pid   int // the process that took it, as seen from our PID namespace; <= 0 if unknown
	write bool
	major uint32
	minor uint32
	ino   uint64
}

// flocksOn returns the FLOCK locks /proc/locks lists on inode ino of device
// dev. Entries for the same inode number on another device are kept when no
// entry matches the device exactly (overlay and btrfs report different
// device numbers), for the caller to verify through /proc/PID/fd.
func flocksOn(dev, ino uint64) ([]lockEntry, error) {
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return nil, err
	}
	var exact, inoOnly []lockEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		e, ok := parseLockLine(sc.Text())
		if !ok || e.ino != ino {
			continue
		}
		if e.major == unix.Major(dev) && e.minor == unix.Minor(dev) {
			exact = append(exact, e)
		} else {
			inoOnly = append(inoOnly, e)
		}
	}
	if len(exact) > 0 {
		return exact, nil
	}
	return inoOnly, nil
}

// parseLockLine parses a /proc/locks line such as
// "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; blocked waiters
// ("1: -> FLOCK ...") are skipped.
func parseLockLine(line string) (lockEntry, bool) {
	f := strings.Fields(line)
	if len(f) < 8 || f[1] != "FLOCK" {
		return lockEntry{}, false
	}
	var e lockEntry
	e.write = f[3] == "WRITE"
	e.pid, _ = strconv.Atoi(f[4])
	id := strings.Split(f[5], ":")
	if len(id) != 3 {
		return lockEntry{}, false
	}
	maj, err1 := strconv.ParseUint(id[0], 16, 32)
	min, err2 := strconv.ParseUint(id[1], 16, 32)
	ino, err3 := strconv.ParseUint(id[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return lockEntry{}, false
	}
	e.major, e.minor, e.ino = uint32(maj), uint32(min), ino
	return e, true
}

// hasFileOpen reports whether process pid has a descriptor open on the file
// dev/ino. It returns an error when /proc/PID/fd cannot be read (the process
// is gone, or belongs to another user and we are not root).
func hasFileOpen(pid int, dev, ino uint64) (bool, error) {
	base := "/proc/" + strconv.Itoa(pid) + "/fd/"
	ents, err := os.ReadDir(base)
	if err != nil {
		return false, err
	}
	for _, e := range ents {
		var st unix.Stat_t
		if unix.Stat(base+e.Name(), &st) == nil && st.Dev == dev && st.Ino == ino {
			return true, nil
		}
	}
	return false, nil
}
