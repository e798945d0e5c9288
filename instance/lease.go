package instance

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/gofrs/flock"
	"golang.org/x/sys/unix"

	"guard/internal/proc"
)

// FileLease is a held lock on a local lock file.
type FileLease struct {
	path   string
	fl     *flock.Flock
	fd     int // gofrs/flock's descriptor, found through /proc/self/fd
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

// claim finishes an acquisition on a freshly locked fl: it checks the file,
// that the path still names it, and writes the holder's record.
func (l *Lock) claim(fl *flock.Flock, d *dir) (*FileLease, error) {
	fi, err := fl.Stat()
	if err != nil {
		return nil, &os.PathError{Op: "stat", Path: l.opts.Path, Err: err}
	}
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("%s: stat: no inode information", l.opts.Path)
	}
	fd, err := ownFD(d.hint, sys.Dev, sys.Ino)
	if err != nil {
		return nil, fmt.Errorf("%s: find lock descriptor: %w", l.opts.Path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: l.opts.Path, Err: err}
	}
	if r := fileUnsafe(&st); r != "" {
		return nil, &UnsafeError{Path: l.opts.Path, Reason: r}
	}
	if now, err := d.lstatAt(l.base); err != nil || now.Dev != st.Dev || now.Ino != st.Ino {
		return nil, errReplaced
	}
	le := &FileLease{path: l.opts.Path, fl: fl, fd: fd, dev: st.Dev, ino: st.Ino,
		lost: make(chan struct{}), stop: make(chan struct{})}
	raw, prev, err := readRecord(le.fd, le.path)
	var pe *os.PathError
	switch {
	case err == nil:
	case errors.As(err, &pe):
		return nil, err // could not read it at all: not a verdict on its content
	case errors.Is(err, errPartial) && looksLikeRecord(raw):
		prev = &Record{} // empty, or torn by a holder killed mid-write
	default:
		return nil, &UnsafeError{Path: l.opts.Path, Reason: "holds something other than a guard record (" + err.Error() + "); not overwriting it"}
	}
	rec, err := l.newRecord(prev.Token)
	if err != nil {
		return nil, err
	}
	if err := le.write(rec); err != nil {
		return nil, err
	}
	le.rec = *rec
	le.wg.Add(1)
	go le.watch(l.opts.CheckInterval)
	return le, nil
}

// identity is what a record says about the process that holds the lock.
type identity struct {
	start uint64
	boot  string
	pidns uint64
	host  string
}

// self reads this process's identity once: it does not change, and reading
// it before waiting keeps /proc reads off the path from wake-up to job start.
var self = sync.OnceValues(func() (identity, error) {
	st, err := proc.ReadStat(os.Getpid())
	if err != nil {
		return identity{}, fmt.Errorf("read own start time: %w", err)
	}
	boot, err := proc.BootID()
	if err != nil {
		return identity{}, fmt.Errorf("read boot id: %w", err)
	}
	ns, err := proc.PIDNamespace(0)
	if err != nil {
		return identity{}, err
	}
	host, _ := os.Hostname()
	return identity{start: st.StartTicks, boot: boot, pidns: ns, host: host}, nil
})

func (l *Lock) newRecord(prevToken uint64) (*Record, error) {
	id, err := self()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &Record{PID: os.Getpid(), StartTicks: id.start, BootID: id.boot, PIDNS: id.pidns,
		Host: id.host, Acquired: now, Name: l.opts.Name, Command: QuoteCommand(l.opts.Command),
		Token: nextToken(prevToken, now)}, nil
}

// write puts rec into the file in place: one write of at most a page at
// offset 0, then a truncation to its length. A reader in between sees the
// new record followed by the tail of the old one, which the parser ignores;
// a torn write fails the checksum and reads as "being written".
func (le *FileLease) write(rec *Record) error {
	b := rec.Marshal()
	if _, err := unix.Pwrite(le.fd, b, 0); err != nil {
		return &os.PathError{Op: "write record", Path: le.path, Err: err}
	}
	if err := unix.Ftruncate(le.fd, int64(len(b))); err != nil {
		return &os.PathError{Op: "truncate", Path: le.path, Err: err}
	}
	return nil
}

// Token implements Lease.
func (le *FileLease) Token() uint64 { return le.rec.Token }

// Record implements Lease.
func (le *FileLease) Record() Record { return le.rec }

// Since implements Lease.
func (le *FileLease) Since() time.Time { return le.rec.Acquired }

// Path returns the lock file's path.
func (le *FileLease) Path() string { return le.path }

// Lost implements Lease: it is closed within CheckInterval of the path
// ceasing to name the locked file (deleted, renamed or replaced).
func (le *FileLease) Lost() <-chan struct{} { return le.lost }

// Err implements Lease.
func (le *FileLease) Err() error {
	le.mu.Lock()
	defer le.mu.Unlock()
	return le.err
}

// Inherit returns a new descriptor for the locked open file, for a child
// process to inherit (exec.Cmd.ExtraFiles): the child then holds the lock
// too, so the lock never ends before the child does. The caller closes it.
func (le *FileLease) Inherit() (*os.File, error) {
	fd, err := unix.FcntlInt(uintptr(le.fd), unix.F_DUPFD_CLOEXEC, 3)
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

// check reports ErrLost when the path no longer names the locked file.
func (le *FileLease) check() error {
	var st unix.Stat_t
	err := unix.Lstat(le.path, &st)
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%s: %w (deleted)", le.path, ErrLost)
	case err != nil:
		return nil // cannot tell (e.g. EACCES on a parent); keep going
	case st.Dev != le.dev || st.Ino != le.ino:
		return fmt.Errorf("%s: %w (replaced by another file)", le.path, ErrLost)
	}
	return nil
}

// Release implements Lease: it rewrites the record as released (keeping the
// token, so the next one is larger) and unlocks. It never removes the lock
// file. It is idempotent; only the first call does anything.
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
	rel := le.rec
	rel.LastPID, rel.PID, rel.Released = rel.PID, 0, time.Now()
	werr := le.write(&rel)
	if err := le.fl.Unlock(); err != nil {
		return &os.PathError{Op: "unlock", Path: le.path, Err: err}
	}
	return werr
}
