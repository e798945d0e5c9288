package instance

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"guard/internal/proc"
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
	// LockPID is the PID the kernel lists for the lock (0 if unknown).
	LockPID int
	// Verified is true when LockPID is the process the record describes:
	// same PID, start time, boot and PID namespace, and it has the lock file
	// open. Only a verified holder may be signalled.
	Verified bool
	// Reason explains a Stale, Unknown or unverified result.
	Reason string
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
	switch {
	case h.State == Held && h.Record != nil && h.Record.PID > 0:
		s := fmt.Sprintf("held by PID %d", h.Record.PID)
		if h.Record.Name != "" {
			s += " (" + h.Record.Name + ")"
		}
		s += " since " + h.Record.Acquired.Local().Format(time.RFC3339)
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

// inspect reads the lock at path without taking it.
func inspect(path string) (*Holder, error) {
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
	locks, lerr := flocksOn(st.Dev, st.Ino)
	_, rec, rerr := readRecord(int(f.Fd()), path)
	if lerr != nil {
		h.State, h.Reason = Unknown, "cannot read /proc/locks: "+lerr.Error()
		h.Record = rec
		return h, nil
	}
	if len(locks) == 0 {
		return classifyFree(h, rec, rerr), nil
	}
	h.State = Held
	// A record being written is retried briefly: the holder is mid-write.
	for i := 0; i < 20 && errors.Is(rerr, errPartial); i++ {
		time.Sleep(5 * time.Millisecond)
		_, rec, rerr = readRecord(int(f.Fd()), path)
	}
	h.Record = rec
	h.LockPID = locks[0].pid
	verify(h, locks, &st, rerr)
	return h, nil
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

// verify decides whether the locking process is the one the record names.
func verify(h *Holder, locks []lockEntry, st *unix.Stat_t, rerr error) {
	rec := h.Record
	switch {
	case rerr != nil:
		h.Reason = "record unreadable: " + rerr.Error()
		return
	case rec.PID == 0:
		h.Reason = "record says released, yet the lock is held (a foreign program holds it)"
		return
	}
	if boot, err := proc.BootID(); err != nil || boot != rec.BootID {
		h.Reason = "record is from another boot"
		return
	}
	if ns, err := proc.PIDNamespace(0); err != nil || ns != rec.PIDNS {
		h.State = Unknown
		h.Reason = "holder is in another PID namespace"
		return
	}
	found := false
	for _, l := range locks {
		if l.pid == rec.PID {
			found = true
		}
	}
	if !found {
		h.Reason = fmt.Sprintf("the kernel lists PID %d as the locker, not the recorded PID %d", h.LockPID, rec.PID)
		return
	}
	ps, err := proc.ReadStat(rec.PID)
	if err != nil {
		h.Reason = fmt.Sprintf("recorded PID %d: %v", rec.PID, err)
		return
	}
	if ps.StartTicks != rec.StartTicks {
		h.Reason = fmt.Sprintf("PID %d started at another time than the recorded holder (PID reused)", rec.PID)
		return
	}
	open, err := hasFileOpen(rec.PID, st.Dev, st.Ino)
	if err != nil {
		h.State = Unknown
		h.Reason = fmt.Sprintf("cannot verify PID %d: %v", rec.PID, err)
		return
	}
	if !open {
		h.Reason = fmt.Sprintf("PID %d does not have the lock file open", rec.PID)
		return
	}
	h.Verified = true
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
