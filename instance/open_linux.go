package instance

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// lockOpenFlags open the lock file for locking: read-only (a descriptor a
// job inherits cannot write the record), never through a symlink, never
// blocking on a FIFO, never acquiring a controlling terminal.
const lockOpenFlags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY

// openLock opens name in d for locking, creating it with mode if it is
// missing; created reports whether this call created it.
func (d *dir) openLock(name string, mode os.FileMode) (fd int, created bool, err error) {
	fd, err = unix.Openat(d.fd, name, lockOpenFlags, 0)
	if errors.Is(err, unix.ENOENT) {
		fd, err = unix.Openat(d.fd, name, lockOpenFlags|unix.O_CREAT|unix.O_EXCL, uint32(mode.Perm()))
		if err == nil {
			return fd, true, nil
		}
		if errors.Is(err, unix.EEXIST) { // another run created it first
			fd, err = unix.Openat(d.fd, name, lockOpenFlags, 0)
		}
	}
	if err != nil {
		return -1, false, &os.PathError{Op: "open", Path: d.path, Err: err}
	}
	return fd, false, nil
}

// hasFlockLine reports whether a /proc/PID/fdinfo/FD text lists a flock
// held through that descriptor's open file description.
func hasFlockLine(fdinfo []byte) bool {
	for _, line := range bytes.Split(fdinfo, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("lock:")) && bytes.Contains(line, []byte("FLOCK")) {
			return true
		}
	}
	return false
}

// deletedHolder looks, after this process created and locked the lock file
// (open as fd), for another process that still holds a flock on a deleted
// file that had the same path: the holder of a lock file someone removed,
// whose job still runs. It returns that holder, or nil. A deleted file this
// process itself still has open is its own earlier lock (a holder taking the
// lock again on a new file while its job keeps the old one): those are
// skipped. It reads every process's descriptors, so it runs only when the
// lock file was just created (first use, after a reboot, or after the file
// was deleted).
func deletedHolder(path string, fd int) *Holder {
	real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return nil
	}
	want := real + " (deleted)"
	ours := deletedOpen("self", want)
	pids, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	for _, p := range pids {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		if procHoldsLockOn(pid, want, ours) {
			return &Holder{Path: path, State: Held, LockPID: pid,
				Reason: fmt.Sprintf("PID %d still holds the lock on a deleted lock file of this path; its run is not over", pid)}
		}
	}
	return nil
}

// fileID is a file's device and inode.
type fileID struct{ dev, ino uint64 }

// deletedOpen returns the files that process pid ("self" or a number) has
// open under the link text target.
func deletedOpen(pid, target string) map[fileID]bool {
	base := "/proc/" + pid + "/fd/"
	fds, _ := os.ReadDir(base)
	ids := map[fileID]bool{}
	for _, f := range fds {
		if link, err := os.Readlink(base + f.Name()); err != nil || link != target {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(base+f.Name(), &st) == nil {
			ids[fileID{st.Dev, st.Ino}] = true
		}
	}
	return ids
}

// procHoldsLockOn reports whether process pid has a descriptor whose link
// reads target, on a file not in skip, whose open file description holds a
// flock.
func procHoldsLockOn(pid int, target string, skip map[fileID]bool) bool {
	base := "/proc/" + strconv.Itoa(pid)
	fds, err := os.ReadDir(base + "/fd")
	if err != nil {
		return false
	}
	for _, f := range fds {
		if link, err := os.Readlink(base + "/fd/" + f.Name()); err != nil || link != target {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(base+"/fd/"+f.Name(), &st) == nil && skip[fileID{st.Dev, st.Ino}] {
			continue
		}
		if info, err := os.ReadFile(base + "/fdinfo/" + f.Name()); err == nil && hasFlockLine(info) {
			return true
		}
	}
	return false
}
