package instance

import (
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
	pids, err := procPIDs()
	if err != nil {
		return nil
	}
	buf := make([]byte, 8192)
	ours := map[fileID]bool{}
	self := os.Getpid()
	eachFD(self, buf, func(dfd int, name string) bool {
		if id, ok := deletedFile(dfd, name, want); ok {
			ours[id] = true
		}
		return false
	})
	for _, pid := range pids {
		if pid == self {
			continue
		}
		found := false
		eachFD(pid, buf, func(dfd int, name string) bool {
			id, ok := deletedFile(dfd, name, want)
			if !ok || ours[id] {
				return false
			}
			n, _ := strconv.Atoi(name)
			_, found, _ = fdLock(pid, n, id.ino)
			return found
		})
		if found {
			return &Holder{Path: path, State: Held, LockPID: pid,
				Reason: fmt.Sprintf("PID %d still holds the lock on a deleted lock file of this path; its run is not over", pid)}
		}
	}
	return nil
}

// fileID is a file's device and inode.
type fileID struct{ dev, ino uint64 }

// deletedFile reports whether descriptor name in the /proc/PID/fd directory
// dfd links to target, and which file it is.
func deletedFile(dfd int, name, target string) (fileID, bool) {
	b := make([]byte, len(target)+1)
	n, err := unix.Readlinkat(dfd, name, b)
	if err != nil || n != len(target) || string(b[:n]) != target {
		return fileID{}, false
	}
	var st unix.Stat_t
	if unix.Fstatat(dfd, name, &st, 0) != nil {
		return fileID{}, false
	}
	return fileID{st.Dev, st.Ino}, true
}
