package instance

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/internal/proc"
)

// verify decides whether the locking process is the one the record names.
// It returns true when the recorded holder is gone: dead, a zombie, or its
// PID now names another process.
func verify(h *Holder, locks []lockEntry, st *unix.Stat_t, rerr error) (gone bool) {
	rec := h.Record
	switch {
	case rerr != nil:
		h.Reason = "record unreadable: " + rerr.Error()
		return false
	case rec.PID == 0:
		h.Reason = "record says released, yet the lock is held (a foreign program holds it)"
		return false
	}
	if boot, err := proc.BootID(); err != nil || boot != rec.BootID {
		h.Reason = "record is from another boot"
		return false
	}
	if ns, err := proc.PIDNamespace(0); err != nil || ns != rec.PIDNS {
		h.State = Unknown
		h.Reason = "holder is in another PID namespace"
		return false
	}
	ps, err := proc.ReadStat(rec.PID)
	switch {
	case errors.Is(err, proc.ErrGone):
		h.Reason = fmt.Sprintf("the recorded holder PID %d is dead", rec.PID)
		return true
	case err != nil:
		h.Reason = fmt.Sprintf("recorded PID %d: %v", rec.PID, err)
		return false
	case ps.StartTicks != rec.StartTicks:
		h.Reason = fmt.Sprintf("PID %d started at another time than the recorded holder (PID reused)", rec.PID)
		return true
	case ps.Zombie():
		h.Reason = fmt.Sprintf("the recorded holder PID %d is dead (a zombie)", rec.PID)
		return true
	}
	if !lists(locks, h.Procs, rec.PID) {
		h.Reason = fmt.Sprintf("the kernel lists PID %d as the locker, not the recorded PID %d", h.LockPID, rec.PID)
		return false
	}
	open, err := hasFileOpen(rec.PID, st.Dev, st.Ino)
	if err != nil {
		h.State = Unknown
		h.Reason = fmt.Sprintf("cannot verify PID %d: %v", rec.PID, err)
		return false
	}
	if !open {
		h.Reason = fmt.Sprintf("PID %d does not have the lock file open", rec.PID)
		return false
	}
	h.Verified = true
	return false
}

// lists reports whether pid is a locker /proc/locks lists, or a process
// seen holding the lock.
func lists(locks []lockEntry, procs []HolderProc, pid int) bool {
	for _, l := range locks {
		if l.pid == pid {
			return true
		}
	}
	for _, p := range procs {
		if p.PID == pid {
			return true
		}
	}
	return false
}

// settle finishes a held lock's picture once the record is checked: it marks
// the recorded holder among Procs, decides whether Procs are the orphaned
// job of a holder that is gone, and turns a lock nobody can be seen holding
// into Unknown.
func settle(h *Holder, gone bool, serr error) {
	for i, p := range h.Procs {
		h.Procs[i].Recorded = h.Verified && p.PID == h.Record.PID && p.StartTicks == h.Record.StartTicks
	}
	switch {
	case h.State != Held || h.Verified:
	case gone && inherited(h):
		h.Orphaned = true
		h.Reason = fmt.Sprintf("the recorded holder PID %d is dead, its job's processes %s still hold the lock", h.Record.PID, procList(h.Procs))
	case len(h.Procs) > 0: // a foreign holder: Describe names Procs
	default:
		h.State = Unknown
		why := "another PID namespace, or its descriptors cannot be read"
		switch {
		case serr != nil:
			why = "cannot read /proc: " + serr.Error()
		case h.Unreadable > 0:
			why = fmt.Sprintf("the descriptors of %d processes cannot be read", h.Unreadable)
		}
		h.Reason = "held, but no process holding it can be seen (" + why + "); " + h.Reason
	}
}

// inherited reports whether every process seen holding the lock holds the
// lock the recorded holder took: the kernel names the recorded PID as the
// locker (or nobody, where a dead locker is hidden from this namespace),
// none of them is a newcomer that reused the recorded PID, and each started
// after the recorded holder did.
func inherited(h *Holder) bool {
	rec := h.Record
	if len(h.Procs) == 0 || rec == nil || rec.PID <= 0 {
		return false
	}
	if h.LockPID != 0 && h.LockPID != rec.PID {
		return false
	}
	for _, p := range h.Procs {
		if (p.Locker != 0 && p.Locker != rec.PID) || p.PID == rec.PID || p.StartTicks < rec.StartTicks {
			return false
		}
	}
	return true
}
