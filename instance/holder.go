package instance

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// State is what Inspect found a lock to be.
type State int

const (
	// Free: not held, and no holder's record remains: never used, or the last
	// holder released it cleanly (then Holder.Record says who and when).
	Free State = iota
	// Held: a process holds the lock.
	Held
	// Stale: not held, but a holder's record remains: the holder died without
	// releasing (crash, SIGKILL, reboot) or left a record guard cannot read.
	Stale
	// Unknown: whether the lock is held could not be established.
	Unknown
)

func (s State) String() string {
	switch s {
	case Free:
		return "free"
	case Held:
		return "held"
	case Stale:
		return "stale"
	}
	return "unknown"
}

// Holder is a snapshot of a lock and its holder. It goes stale as soon as it
// is returned.
type Holder struct {
	Path   string
	State  State
	Record *Record // the record in the file; nil if none could be read
	// LockPID is the PID the kernel lists for the lock: the process that
	// took it, which may have died since (0 if unknown).
	LockPID int
	// Verified is true when LockPID is the process the record describes:
	// same PID, start time, boot and PID namespace, and it has the lock file
	// open. Only a verified holder may be signalled.
	Verified bool
	// Procs are the processes seen holding the lock, by PID: those with a
	// descriptor on the open file description the lock belongs to (the
	// holder, and whatever inherited the descriptor from it). It may miss
	// processes whose descriptors cannot be read (see Unreadable) or that
	// live outside this PID namespace.
	Procs []HolderProc
	// Unreadable counts the processes whose descriptors could not be read
	// (another user's, when not root): Procs may miss holders among them.
	Unreadable int
	// Orphaned is true when the recorded holder is gone (dead, or its PID
	// reused) and every process in Procs holds the very lock it took (the
	// kernel still names the recorded PID as the locker, or nobody visible):
	// its job's processes, which inherited the locked descriptor and keep
	// the lock. They are then proven holders and may be signalled, each
	// after Confirm.
	Orphaned bool
	// Reason explains a Stale, Unknown, unverified or orphaned result.
	Reason string

	dev, ino uint64 // the lock file
}

// HolderProc is one process that holds a lock.
type HolderProc struct {
	PID        int
	StartTicks uint64 // its start time, clock ticks since boot (with PID: its identity)
	Comm       string // its command name, from /proc/PID/stat
	FD         int    // a descriptor of it on the locked open file description
	// Locker is the process that took the lock, as the kernel shows it to
	// this PID namespace: 0 when it is gone or not visible here.
	Locker int
	Write  bool // the lock is exclusive (guard's always is)
	// Recorded is true for the verified holder the record describes.
	Recorded bool
}

func (p HolderProc) String() string { return fmt.Sprintf("%d (%s)", p.PID, p.Comm) }

// Confirm checks again, from /proc, that p still holds the lock h describes
// (through the same descriptor) and that its PID still names the process
// that started at p.StartTicks. Callers that signal p open a pidfd on it
// first (internal/proc.Open), then Confirm, so the signal reaches a process
// proven to hold the lock. It returns nil when p still holds the lock.
func (h *Holder) Confirm(p HolderProc) error {
	if h.ino == 0 {
		return errors.New("no lock file inspected")
	}
	return confirm(p, h.dev, h.ino)
}

// Since returns when the holder took the lock, or the zero time.
func (h *Holder) Since() time.Time {
	if h.Record == nil {
		return time.Time{}
	}
	return h.Record.Acquired
}

// Describe renders the holder for a one-line message.
func (h *Holder) Describe() string {
	rec := h.Record
	switch {
	case h.State == Held && h.Orphaned:
		return fmt.Sprintf("held by the job of PID %d%s since %s; %s", rec.PID, named(rec),
			rec.Acquired.Local().Format(time.RFC3339), h.Reason)
	case h.State == Held && !h.Verified && len(h.Procs) > 0:
		why := h.Reason
		if rec == nil || rec.PID <= 0 {
			why = "not a guard record: " + why
		}
		return fmt.Sprintf("held by PID %s (%s)", procList(h.Procs), why)
	case h.State == Held && rec != nil && rec.PID > 0:
		s := fmt.Sprintf("held by PID %d", rec.PID) + named(rec)
		s += " since " + rec.Acquired.Local().Format(time.RFC3339)
		if !h.Verified && h.Reason != "" {
			s += "; " + h.Reason
		}
		return s
	case h.State == Held && h.LockPID > 0:
		return fmt.Sprintf("held by PID %d (%s)", h.LockPID, h.Reason)
	case h.State == Held:
		return "held (" + h.Reason + ")"
	}
	return h.Reason
}

func named(rec *Record) string {
	if rec.Name == "" {
		return ""
	}
	return " (" + rec.Name + ")"
}

// procList renders processes as "123 (sleep), 456 (sh)", the first
// maxListed of them.
func procList(ps []HolderProc) string {
	const maxListed = 10
	s := make([]string, 0, min(len(ps), maxListed)+1)
	for i, p := range ps {
		if i == maxListed {
			s = append(s, fmt.Sprintf("and %d more", len(ps)-maxListed))
			break
		}
		s = append(s, p.String())
	}
	return strings.Join(s, ", ")
}

// inspect reads the lock at path without taking it.
func inspect(path string) (*Holder, error) { return inspectLock(path, false) }

// inspectLock is inspect; quick skips the scan of every process's
// descriptors when /proc/locks names a holder that the record proves (the
// busy path of a run, which only names the holder), and falls back to the
// full look otherwise.
func inspectLock(path string, quick bool) (*Holder, error) {
	h := &Holder{Path: path}
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		h.State, h.Reason = Free, "no lock file"
		return h, nil
	}
	if errors.Is(err, unix.ELOOP) {
		return nil, &UnsafeError{Path: path, Reason: "is a symbolic link"}
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &UnsafeError{Path: path, Reason: "not a regular file"}
	}
	h.dev, h.ino = st.Dev, st.Ino
	locks, lerr, scan, serr, scanned := lookup(st.Dev, st.Ino, quick)
	h.Procs, h.Unreadable = scan.procs, scan.unreadable
	_, rec, rerr := readRecord(int(f.Fd()), path)
	if len(locks) == 0 && len(h.Procs) == 0 {
		if why := unseen(int(f.Fd()), lerr, serr); why != "" {
			h.State, h.Reason, h.Record = Unknown, why, rec
			return h, nil
		}
		return classifyFree(h, rec, rerr), nil
	}
	h.State = Held
	// A record being written is retried briefly: the holder is mid-write.
	for i := 0; i < 20 && errors.Is(rerr, errPartial); i++ {
		time.Sleep(5 * time.Millisecond)
		_, rec, rerr = readRecord(int(f.Fd()), path)
	}
	h.Record = rec
	h.LockPID = lockerOf(locks, h.Procs)
	gone := verify(h, locks, &st, rerr)
	if !scanned && !h.Verified {
		return inspectLock(path, false)
	}
	settle(h, gone, serr)
	return h, nil
}

// lookup reads who holds the lock on dev/ino two ways: /proc/locks, and a
// scan of every process's descriptors. When /proc/locks lists a lock that no
// process can be seen holding, while every process could be read, the lock
// changed hands between the two reads: both are read once more.
//
// quick skips the scan when /proc/locks lists a lock (scanned is false).
func lookup(dev, ino uint64, quick bool) (locks []lockEntry, lerr error, scan holderScan, serr error, scanned bool) {
	for range 2 {
		locks, lerr = flocksOn(dev, ino)
		if quick && lerr == nil && len(locks) > 0 {
			return locks, nil, scan, nil, false
		}
		scan, serr = scanHolders(dev, ino)
		scanned = true
		if len(locks) == 0 || len(scan.procs) > 0 || serr != nil || scan.unreadable > 0 || !locksComplete() {
			break
		}
	}
	return locks, lerr, scan, serr, scanned
}

// unseen is called when no lock is listed and no process is seen holding
// one. It returns "" when the lock is free, or why that cannot be told. In a
// PID namespace other than the initial one, /proc/locks hides a lock whose
// locker died or is not visible, and the holders may live outside the
// namespace: there (and when /proc/locks cannot be read) the lock is probed
// with a non-blocking flock(2) released at once.
func unseen(fd int, lerr, serr error) string {
	if lerr == nil && locksComplete() {
		return ""
	}
	held, err := probeHeld(fd)
	switch {
	case err != nil && lerr != nil:
		return "cannot read /proc/locks: " + lerr.Error()
	case err != nil:
		return "cannot test the lock: " + err.Error()
	case !held:
		return ""
	case serr != nil:
		return "held, but no process holding it can be seen: cannot read /proc: " + serr.Error()
	}
	return "held by a process that cannot be seen from here (another PID namespace, or another user's)"
}

// lockerOf returns the PID the kernel gives as the lock's taker.
func lockerOf(locks []lockEntry, procs []HolderProc) int {
	if len(locks) > 0 {
		return locks[0].pid
	}
	for _, p := range procs {
		if p.Locker > 0 {
			return p.Locker
		}
	}
	return 0
}

func classifyFree(h *Holder, rec *Record, rerr error) *Holder {
	switch {
	case rerr == nil && rec.PID == 0:
		h.State, h.Record = Free, rec
		h.Reason = fmt.Sprintf("released cleanly by PID %d at %s", rec.LastPID, rec.Released.Local().Format(time.RFC3339))
	case rerr == nil:
		h.State, h.Record = Stale, rec
		h.Reason = fmt.Sprintf("PID %d died without releasing the lock (record from %s)", rec.PID, rec.Acquired.Local().Format(time.RFC3339))
	case errors.Is(rerr, errEmpty):
		h.State, h.Reason = Free, "never held (empty lock file)"
	default:
		h.State, h.Reason = Stale, "a holder died while writing its record, or the record is malformed: "+rerr.Error()
	}
	return h
}

var errEmpty = fmt.Errorf("%w: empty", errPartial)

// readRecord reads the record at the start of fd (the lock file at path)
// and parses it. raw is what was read, for looksLikeRecord. An empty file
// is errEmpty; content longer than a record is malformed.
func readRecord(fd int, path string) (raw []byte, rec *Record, err error) {
	buf := make([]byte, MaxRecord+1)
	n, err := unix.Pread(fd, buf, 0)
	if err != nil {
		return nil, nil, &os.PathError{Op: "read", Path: path, Err: err}
	}
	raw = buf[:n]
	switch {
	case n == 0:
		return raw, nil, errEmpty
	case n > MaxRecord:
		return raw, nil, errors.New("larger than a record")
	}
	rec, err = ParseRecord(raw)
	return raw, rec, err
}

// Inspect reports who holds the lock at path, without taking it.
func Inspect(path string) (*Holder, error) { return inspect(path) }
