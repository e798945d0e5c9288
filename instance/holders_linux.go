package instance

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/internal/proc"
)

// initPIDNS is the inode number of the initial PID namespace
// (PROC_PID_INIT_INO), the only one whose /proc/locks lists every lock.
const initPIDNS = 0xEFFFFFFC

// holderScan is what one pass over /proc found about a lock file.
type holderScan struct {
	procs      []HolderProc
	unreadable int // processes whose descriptors could not be read
}

// scanHolders finds every process that holds the flock(2) lock on the file
// dev/ino: one of its descriptors names the file (stat through
// /proc/PID/fd/FD) and /proc/PID/fdinfo/FD shows a FLOCK lock on it, which
// the kernel shows only for the open file description the lock belongs to.
// Unlike /proc/locks, this sees a lock whose locker is gone or outside this
// PID namespace, as long as a process here still holds it. Processes whose
// descriptors cannot be read (another user's, as non-root) are counted in
// unreadable.
func scanHolders(dev, ino uint64) (holderScan, error) {
	var s holderScan
	pids, err := procPIDs()
	if err != nil {
		return s, err
	}
	buf := make([]byte, 8192)
	for _, pid := range pids {
		hp, ok, err := heldBy(pid, dev, ino, buf)
		switch {
		case errors.Is(err, os.ErrPermission):
			s.unreadable++
		case ok:
			s.procs = append(s.procs, hp)
		}
	}
	return s, nil
}

// procPIDs lists the processes in /proc.
func procPIDs() ([]int, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if n == "" || n[0] < '0' || n[0] > '9' {
			continue
		}
		if pid, err := strconv.Atoi(n); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// heldBy reports whether pid holds the lock on dev/ino, through which
// descriptor, and who the kernel says took the lock. A process that is gone
// is (false, nil). buf is scratch space for directory entries.
func heldBy(pid int, dev, ino uint64, buf []byte) (hp HolderProc, ok bool, err error) {
	werr := eachFD(pid, buf, func(dfd int, name string) bool {
		var st unix.Stat_t
		if unix.Fstatat(dfd, name, &st, 0) != nil || st.Dev != dev || st.Ino != ino {
			return false
		}
		hp, ok, err = lockedFD(pid, name, ino)
		return ok || err != nil
	})
	if werr != nil {
		return HolderProc{}, false, werr
	}
	return hp, ok, err
}

// eachFD calls f with the descriptor directory of pid (an open fd on
// /proc/PID/fd) and the name of each of its descriptors, until f returns
// true. A process that is gone yields nil.
func eachFD(pid int, buf []byte, f func(dfd int, name string) bool) error {
	dfd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return gone(err)
	}
	defer unix.Close(dfd)
	var names []string
	for {
		n, err := unix.Getdents(dfd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return gone(err)
		}
		if n <= 0 {
			return nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names[:0])
		for _, name := range names {
			if f(dfd, name) {
				return nil
			}
		}
	}
}

// lockedFD checks the fdinfo of pid's descriptor fd, which names the lock
// file, for the lock, and describes pid if it holds it.
func lockedFD(pid int, name string, ino uint64) (HolderProc, bool, error) {
	fd, _ := strconv.Atoi(name)
	e, ok, err := fdLock(pid, fd, ino)
	if err != nil || !ok {
		return HolderProc{}, false, gone(err)
	}
	ps, err := proc.ReadStat(pid)
	if err != nil {
		return HolderProc{}, false, gone(err)
	}
	return HolderProc{PID: pid, StartTicks: ps.StartTicks, Comm: ps.Comm, FD: fd, Locker: e.pid, Write: e.write}, true, nil
}

// gone maps the errors of a process that exited meanwhile to nil and keeps
// the others (permission above all).
func gone(err error) error {
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) || errors.Is(err, proc.ErrGone) {
		return nil
	}
	return err
}

// fdLock reads /proc/PID/fdinfo/FD and returns the FLOCK lock it shows on
// inode ino, if any.
func fdLock(pid, fd int, ino uint64) (lockEntry, bool, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return lockEntry{}, false, err
	}
	e, ok := parseFdinfoLock(b, ino)
	return e, ok, nil
}

// parseFdinfoLock finds, in the contents of a /proc/PID/fdinfo/FD file, a
// line such as "lock:\t1: FLOCK  ADVISORY  WRITE 1837 fe:00:9977881 0 EOF"
// for a flock(2) lock on inode ino. The PID in it is the process that took
// the lock, as seen from the reader's PID namespace: 0 if it is gone or not
// visible there.
func parseFdinfoLock(b []byte, ino uint64) (lockEntry, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "lock:")
		if !ok {
			continue
		}
		if e, ok := parseLockLine(rest); ok && e.ino == ino {
			return e, true
		}
	}
	return lockEntry{}, false
}

// confirm checks again that p holds the lock on dev/ino through p.FD, and
// that p.PID still names the process that started at p.StartTicks.
func confirm(p HolderProc, dev, ino uint64) error {
	fdPath := fmt.Sprintf("/proc/%d/fd/%d", p.PID, p.FD)
	var st unix.Stat_t
	if err := unix.Stat(fdPath, &st); err != nil {
		return fmt.Errorf("PID %d: %w", p.PID, err)
	}
	if st.Dev != dev || st.Ino != ino {
		return fmt.Errorf("PID %d: descriptor %d no longer names the lock file", p.PID, p.FD)
	}
	if _, ok, err := fdLock(p.PID, p.FD, ino); err != nil || !ok {
		if err == nil {
			err = errors.New("no longer holds the lock")
		}
		return fmt.Errorf("PID %d: %w", p.PID, err)
	}
	ps, err := proc.ReadStat(p.PID)
	if err != nil {
		return err
	}
	if ps.StartTicks != p.StartTicks {
		return fmt.Errorf("PID %d: %w", p.PID, proc.ErrChanged)
	}
	return nil
}

// locksComplete reports whether /proc/locks lists every lock: only in the
// initial PID namespace. Elsewhere it hides a lock whose locker has died or
// is not visible in the namespace.
func locksComplete() bool {
	ns, err := proc.PIDNamespace(0)
	return err == nil && ns == initPIDNS
}

// probeHeld tells whether anyone holds a lock on fd's file, by taking the
// lock without waiting and releasing it at once. Inspect uses it only where
// nothing else can tell (a PID namespace other than the initial one, where
// no process in sight holds the lock).
func probeHeld(fd int) (bool, error) {
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			unix.Flock(fd, unix.LOCK_UN)
			return false, nil
		case errors.Is(err, unix.EWOULDBLOCK):
			return true, nil
		case errors.Is(err, unix.EINTR):
			continue
		}
		return false, err
	}
}
