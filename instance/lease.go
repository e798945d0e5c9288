package instance

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/internal/proc"
)

// FileLease is a held lock on a local lock file. The lock belongs to an open
// file description opened read-only; the record is written through a second
// descriptor, so whoever inherits the locked one (Inherit) can neither write
// the record nor hold it open for writing.
type FileLease struct {
	path   string
	lockFD int // the read-only descriptor that holds the flock
	recFD  int // read-write, for the record; holds no lock
	dev    uint64
	ino    uint64
	rec    Record
	lost   chan struct{}
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
	closed bool
}

// claim finishes an acquisition on fd, freshly locked: it checks the file,
// that the path still names it, that no process still holds the lock on a
// deleted file of the same path (when the file is new: created by this
// attempt, or still empty), and writes the holder's record.
func (l *FileLocker) claim(fd int, d *dir, created bool) (*FileLease, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: l.opts.Path, Err: err}
	}
	if r := d.sd.FileUnsafe(&st); r != "" {
		return nil, &UnsafeError{Path: l.opts.Path, Reason: r}
	}
	if now, err := d.lstatAt(l.base); err != nil || now.Dev != st.Dev || now.Ino != st.Ino {
		return nil, errReplaced
	}
	// A file this run created, or one no holder ever wrote a record into
	// (a run that created it found it busy this way and left it empty), may
	// stand where a lock file was deleted under a running job.
	if created || st.Size == 0 {
		if h := deletedHolder(l.opts.Path, fd); h != nil {
			return nil, &HeldError{Path: l.opts.Path, Holder: h}
		}
	}
	recFD, err := unix.Openat(d.fd, l.base, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, l.openError(&os.PathError{Op: "open", Path: l.opts.Path, Err: err})
	}
	le := &FileLease{path: l.opts.Path, lockFD: fd, recFD: recFD, dev: st.Dev, ino: st.Ino,
		lost: make(chan struct{}), stop: make(chan struct{})}
	if err := l.initRecord(le, &st); err != nil {
		unix.Close(recFD)
		return nil, err
	}
	le.wg.Add(1)
	go le.watch(l.opts.CheckInterval)
	return le, nil
}

// initRecord checks that le's second descriptor names the locked file, sets
// the file's mode, and writes the new holder's record.
func (l *FileLocker) initRecord(le *FileLease, locked *unix.Stat_t) error {
	var st unix.Stat_t
	if err := unix.Fstat(le.recFD, &st); err != nil {
		return &os.PathError{Op: "stat", Path: l.opts.Path, Err: err}
	}
	if st.Dev != locked.Dev || st.Ino != locked.Ino {
		return errReplaced
	}
	if want := uint32(l.opts.Mode.Perm()); st.Uid == uint32(os.Geteuid()) && st.Mode&0o7777 != want {
		if err := unix.Fchmod(le.recFD, want); err != nil {
			return &os.PathError{Op: "chmod", Path: l.opts.Path, Err: err}
		}
	}
	raw, prev, err := readRecord(le.recFD, le.path)
	var pe *os.PathError
	switch {
	case err == nil:
	case errors.As(err, &pe):
		return err // could not read it at all: not a verdict on its content
	case errors.Is(err, errPartial) && looksLikeRecord(raw):
		prev = &Record{} // empty, or torn by a holder killed mid-write
	default:
		return &UnsafeError{Path: l.opts.Path, Reason: "holds something other than a guard record (" + err.Error() + "); not overwriting it"}
	}
	rec, err := l.newRecord(prev.Token)
	if err != nil {
		return err
	}
	rec.LastSuccess = prev.LastSuccess // kept with the lock, for --min-interval
	if err := le.write(rec); err != nil {
		return err
	}
	le.rec = *rec
	return nil
}

// Self returns the part of a record that identifies this process as a
// holder: PID, start time, boot id, PID namespace and host name. It is read
// once: it does not change, and reading it before a wait keeps /proc reads
// off the path from wake-up to the job's start. Any backend's records use it.
func Self() (Record, error) { return self() }

var self = sync.OnceValues(func() (Record, error) {
	st, err := proc.ReadStat(os.Getpid())
	if err != nil {
		return Record{}, fmt.Errorf("read own start time: %w", err)
	}
	boot, err := proc.BootID()
	if err != nil {
		return Record{}, fmt.Errorf("read boot id: %w", err)
	}
	ns, err := proc.PIDNamespace(0)
	if err != nil {
		return Record{}, err
	}
	host, _ := os.Hostname()
	return Record{PID: os.Getpid(), StartTicks: st.StartTicks, BootID: boot, PIDNS: ns, Host: host}, nil
})

func (l *FileLocker) newRecord(prevToken uint64) (*Record, error) {
	rec, err := self()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	token, err := nextToken(prevToken, now)
	if err != nil {
		return nil, &UnsafeError{Path: l.opts.Path, Reason: err.Error()}
	}
	rec.Acquired, rec.Name, rec.Command, rec.Token = now, l.opts.Name, QuoteCommand(l.opts.Command), token
	return &rec, nil
}

// write puts rec into the file in place: one write of at most a page at
// offset 0, then a truncation to its length. A reader in between sees the
// new record followed by the tail of the old one, which the parser ignores;
// a torn write fails the checksum and reads as "being written".
func (le *FileLease) write(rec *Record) error {
	b := rec.Marshal()
	if _, err := unix.Pwrite(le.recFD, b, 0); err != nil {
		return &os.PathError{Op: "write record", Path: le.path, Err: err}
	}
	if err := unix.Ftruncate(le.recFD, int64(len(b))); err != nil {
		return &os.PathError{Op: "truncate", Path: le.path, Err: err}
	}
	return nil
}

// Token implements Lease.
func (le *FileLease) Token() uint64 { return le.rec.Token }

var _ SuccessRecorder = (*FileLease)(nil)

// RecordSuccess implements SuccessRecorder: it rewrites the record in place
// with LastSuccess set to t, while the lease holds; Release keeps it. After
// Release it does nothing and returns nil.
func (le *FileLease) RecordSuccess(t time.Time) error {
	le.mu.Lock()
	defer le.mu.Unlock()
	if le.closed {
		return nil
	}
	rec := le.rec
	rec.LastSuccess = t
	if err := le.write(&rec); err != nil {
		return err
	}
	le.rec = rec
	return nil
}

// Record implements Lease.
func (le *FileLease) Record() Record {
	le.mu.Lock()
	defer le.mu.Unlock()
	return le.rec
}

// Since implements Lease.
func (le *FileLease) Since() time.Time { return le.rec.Acquired }

// Path returns the lock file's path.
func (le *FileLease) Path() string { return le.path }

// Lost implements Lease: it is closed within CheckInterval of the path
// ceasing to name the locked file (deleted, renamed or replaced), or of the
// locked descriptor no longer holding the lock (a process that inherited it
// unlocked it with flock -u).
func (le *FileLease) Lost() <-chan struct{} { return le.lost }

// Err implements Lease.
func (le *FileLease) Err() error {
	le.mu.Lock()
	defer le.mu.Unlock()
	return le.err
}

// Inherit returns a new descriptor for the locked, read-only open file
// description, for a child process to inherit (exec.Cmd.ExtraFiles): the
// child then holds the lock too, so the lock never ends before the child and
// everything it hands the descriptor to have closed it. The caller closes it.
func (le *FileLease) Inherit() (*os.File, error) {
	fd, err := unix.FcntlInt(uintptr(le.lockFD), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, &os.PathError{Op: "dup", Path: le.path, Err: err}
	}
	return os.NewFile(uintptr(fd), le.path), nil
}

func (le *FileLease) watch(every time.Duration) {
	defer le.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-le.stop:
			return
		case <-t.C:
		}
		if err := le.check(); err != nil {
			le.mu.Lock()
			le.err = err
			le.mu.Unlock()
			close(le.lost)
			return
		}
	}
}

// check reports ErrLost when the path no longer names the locked file or
// the locked descriptor no longer holds the lock.
func (le *FileLease) check() error {
	var st unix.Stat_t
	err := unix.Lstat(le.path, &st)
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%s: %w: the lock file was deleted", le.path, ErrLost)
	case err == nil && (st.Dev != le.dev || st.Ino != le.ino):
		return fmt.Errorf("%s: %w: the lock file was replaced by another file", le.path, ErrLost)
	}
	// err != nil otherwise: cannot tell (e.g. EACCES on a parent); go on.
	if held, known := le.holdsFlock(); known && !held {
		return fmt.Errorf("%s: %w: a process that inherited the locked descriptor unlocked it (flock -u?)", le.path, ErrLost)
	}
	return nil
}

// holdsFlock reports whether the locked descriptor still holds the flock,
// from /proc/self/fdinfo; known is false when that cannot be read.
func (le *FileLease) holdsFlock() (held, known bool) {
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(le.lockFD))
	if err != nil {
		return false, false
	}
	_, held = parseFdinfoLock(b, le.ino)
	return held, true
}

// Release implements Lease. If the locked descriptor still holds the lock,
// it rewrites the record as released (keeping the token, so the next one is
// larger). It then closes its descriptors, never unlocking explicitly: a
// process that inherited the locked descriptor and still runs keeps the lock
// until it ends, as with flock(1). It never removes the lock file. It is
// idempotent; only the first call does anything. If the lock was taken over
// meanwhile (the lease was lost) the record is left to the new holder and the
// error matches ErrLost.
func (le *FileLease) Release() error {
	le.mu.Lock()
	if le.closed {
		le.mu.Unlock()
		return nil
	}
	le.closed = true
	le.mu.Unlock()
	close(le.stop)
	le.wg.Wait()
	var err error
	// A no-op if this description holds the lock; it takes it again if a
	// process that inherited it unlocked it and nobody took it since.
	if ok, ferr := tryFlock(le.lockFD); ferr == nil && ok {
		rel := le.rec
		rel.LastPID, rel.PID, rel.Released = rel.PID, 0, time.Now()
		err = le.write(&rel)
	} else {
		err = fmt.Errorf("%s: %w: another process holds it now; its record is left alone", le.path, ErrLost)
	}
	_ = unix.Close(le.recFD) // read-write, no lock on it: nothing to lose
	if cerr := unix.Close(le.lockFD); cerr != nil && err == nil {
		err = &os.PathError{Op: "close", Path: le.path, Err: cerr}
	}
	return err
}
