package instance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultMode is the mode of a lock file guard creates: only its owner may
// open it, so no other user can hold a shared lock on it and make every run
// find it busy.
const DefaultMode os.FileMode = 0o600

// Options configure a FileLocker. Path is required.
type Options struct {
	Path    string   // the lock file; created with Mode if missing
	Name    string   // job name recorded for readers
	Command []string // command recorded for readers
	// Mode is the lock file's permission bits (default DefaultMode). It is
	// applied when the file is created and, for a file this user owns, on
	// every acquisition. Widening it lets other users open the file: they
	// can then read the record, and also hold a shared lock on it, which
	// makes every run find the lock busy for as long as they hold it.
	Mode os.FileMode
	// AllowNetworkFS permits a lock on NFS, CIFS and the like, where flock(2)
	// may be emulated or not shared between hosts.
	AllowNetworkFS bool
	// CheckInterval is how often a lease checks that its path still names
	// the locked file and that its descriptor still holds the lock (default
	// 250ms).
	CheckInterval time.Duration
}

// FileLocker is the single-instance lock on a local lock file. Its zero value is
// not usable; make one with New. A FileLocker may be used for many acquisitions.
type FileLocker struct {
	opts Options
	dir  string
	base string
}

// New checks opts and returns a FileLocker. It touches no file.
func New(opts Options) (*FileLocker, error) {
	if opts.Path == "" {
		return nil, errors.New("instance: empty lock path")
	}
	p := filepath.Clean(opts.Path)
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = 250 * time.Millisecond
	}
	if opts.Mode == 0 {
		opts.Mode = DefaultMode
	}
	opts.Path = p
	return &FileLocker{opts: opts, dir: filepath.Dir(p), base: filepath.Base(p)}, nil
}

// Path returns the lock file's path.
func (l *FileLocker) Path() string { return l.opts.Path }

// Inspect implements Locker. It never takes the lock.
func (l *FileLocker) Inspect(ctx context.Context) (*Holder, error) { return inspect(l.opts.Path) }

// TryLock implements Locker. The Lease it returns is a *FileLease.
func (l *FileLocker) TryLock(ctx context.Context) (Lease, error) {
	le, err := l.acquire(nil)
	if err != nil {
		return nil, err
	}
	return le, nil
}

// Lock implements Locker; the Lease it returns is a *FileLease. A wait that
// ctx ends leaves one goroutine blocked in flock(2) until the lock is next
// released or the process exits; if it then gets the lock, it closes the
// descriptor at once, which releases it. (flock(2) cannot be interrupted
// without a signal, and the kernel's blocking wait is what wakes a waiter the
// moment the holder releases.)
func (l *FileLocker) Lock(ctx context.Context) (Lease, error) {
	if ctx == nil {
		panic("instance: nil context")
	}
	le, err := l.acquire(ctx)
	if err != nil {
		return nil, err
	}
	return le, nil
}

// maxRetries bounds the retries when the path keeps changing under us.
const maxRetries = 100

func (l *FileLocker) acquire(ctx context.Context) (*FileLease, error) {
	if ctx != nil {
		// About to wait, maybe: read what the record will say now, not
		// between the wake-up and the job's start. A TryLock that finds
		// the lock busy never needs it.
		if _, err := self(); err != nil {
			return nil, err
		}
	}
	for range maxRetries {
		le, retry, err := l.attempt(ctx)
		if err != nil || !retry {
			return le, err
		}
	}
	return nil, fmt.Errorf("%s: lock file keeps being replaced; gave up after %d attempts", l.opts.Path, maxRetries)
}

// attempt makes one acquisition attempt. retry is true when the path no
// longer named the file that was locked.
//
// The lock is taken on a read-only open file description: the one a child
// inherits (Inherit) cannot be written through, so a job cannot damage the
// record. The record is written through a second, read-write descriptor.
func (l *FileLocker) attempt(ctx context.Context) (le *FileLease, retry bool, err error) {
	d, err := openDir(l.dir, l.opts.AllowNetworkFS)
	if err != nil {
		return nil, false, err
	}
	defer d.close()
	if err := d.precheck(l.base, l.opts.Path); err != nil {
		return nil, false, err
	}
	fd, created, err := d.openLock(l.base, l.opts.Mode)
	if err != nil {
		return nil, false, l.openError(err)
	}
	ok, err := tryFlock(fd)
	if err != nil {
		unix.Close(fd)
		return nil, false, l.openError(err)
	}
	if !ok {
		if ctx == nil {
			unix.Close(fd)
			return nil, false, l.held(nil)
		}
		if err := l.wait(ctx, fd); err != nil {
			return nil, false, err
		}
	}
	le, err = l.claim(fd, d, created)
	if errors.Is(err, errReplaced) {
		unix.Close(fd)
		return nil, true, nil
	}
	if err != nil {
		unix.Close(fd)
		return nil, false, err
	}
	return le, false, nil
}

// tryFlock takes an exclusive flock on fd without blocking; ok is false when
// another open file description holds a lock on the file.
func tryFlock(fd int) (ok bool, err error) {
	for {
		err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EWOULDBLOCK):
			return false, nil
		case !errors.Is(err, unix.EINTR):
			return false, err
		}
	}
}

// wait blocks in flock(2) until fd is locked or ctx is done. When ctx ends
// first, the blocked goroutine is abandoned: it closes fd when its flock
// returns, which releases the lock if it got it.
func (l *FileLocker) wait(ctx context.Context, fd int) error {
	done := make(chan error, 1)
	go func() {
		for {
			err := unix.Flock(fd, unix.LOCK_EX)
			if !errors.Is(err, unix.EINTR) {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			unix.Close(fd)
			return l.openError(err)
		}
		return nil
	case <-ctx.Done():
		go func() {
			<-done
			unix.Close(fd)
		}()
		return l.held(ctx.Err())
	}
}

func (l *FileLocker) held(ctxErr error) error {
	h, err := inspectLock(l.opts.Path, true)
	if err != nil {
		h = nil
	}
	return &HeldError{Path: l.opts.Path, Holder: h, Err: ctxErr}
}

// openError turns an open or flock failure into a path error, and a symlink
// into an *UnsafeError.
func (l *FileLocker) openError(err error) error {
	if errors.Is(err, syscall.ELOOP) {
		return &UnsafeError{Path: l.opts.Path, Reason: "is a symbolic link"}
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return &os.PathError{Op: pe.Op, Path: l.opts.Path, Err: pe.Err}
	}
	return &os.PathError{Op: "lock", Path: l.opts.Path, Err: err}
}

var errReplaced = errors.New("path no longer names the locked file")
