package instance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gofrs/flock"
	"golang.org/x/sys/unix"
)

// Options configure a Lock. Path is required.
type Options struct {
	Path    string   // the lock file; created 0644 if missing
	Name    string   // job name recorded for readers
	Command []string // command recorded for readers
	// AllowNetworkFS permits a lock on NFS, CIFS and the like, where flock(2)
	// may be emulated or not shared between hosts.
	AllowNetworkFS bool
	// CheckInterval is how often a lease checks that its path still names
	// the locked file (default 250ms).
	CheckInterval time.Duration
}

// Lock is the single-instance lock on a local lock file. Its zero value is
// not usable; make one with New. A Lock may be used for many acquisitions
// but holds at most one Lease at a time per call.
type Lock struct {
	opts Options
	dir  string
	base string
}

// New checks opts and returns a Lock. It touches no file.
func New(opts Options) (*Lock, error) {
	if opts.Path == "" {
		return nil, errors.New("instance: empty lock path")
	}
	p := filepath.Clean(opts.Path)
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = 250 * time.Millisecond
	}
	opts.Path = p
	return &Lock{opts: opts, dir: filepath.Dir(p), base: filepath.Base(p)}, nil
}

// Path returns the lock file's path.
func (l *Lock) Path() string { return l.opts.Path }

// Inspect implements Locker. It never takes the lock.
func (l *Lock) Inspect(ctx context.Context) (*Holder, error) { return inspect(l.opts.Path) }

// TryLock implements Locker.
func (l *Lock) TryLock(ctx context.Context) (Lease, error) { return l.TryLockFile() }

// Lock implements Locker.
func (l *Lock) Lock(ctx context.Context) (Lease, error) { return l.LockFile(ctx) }

// TryLockFile is TryLock returning the concrete *FileLease.
func (l *Lock) TryLockFile() (*FileLease, error) { return l.acquire(nil) }

// LockFile is Lock returning the concrete *FileLease. A wait that ctx ends
// leaves one goroutine blocked in flock(2) until the lock is next released
// or the process exits; if it then gets the lock, it releases it at once.
// (flock(2) cannot be interrupted without a signal, and the kernel's
// blocking wait is what wakes a waiter the moment the holder releases.)
func (l *Lock) LockFile(ctx context.Context) (*FileLease, error) {
	if ctx == nil {
		panic("instance: nil context")
	}
	return l.acquire(ctx)
}

// maxRetries bounds the retries when the path keeps changing under us.
const maxRetries = 100

func (l *Lock) acquire(ctx context.Context) (*FileLease, error) {
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
func (l *Lock) attempt(ctx context.Context) (le *FileLease, retry bool, err error) {
	d, err := openDir(l.dir, l.opts.AllowNetworkFS)
	if err != nil {
		return nil, false, err
	}
	keep := false // an abandoned wait keeps d open until it is done with it
	defer func() {
		if !keep {
			d.close()
		}
	}()
	if err := d.precheck(l.base, l.opts.Path); err != nil {
		return nil, false, err
	}
	d.noteFreeFD()
	fl := flock.New(d.via+"/"+l.base,
		flock.SetFlag(os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW|unix.O_NONBLOCK),
		flock.SetPermissions(0o644))
	ok, err := fl.TryLock()
	if err != nil {
		return nil, false, l.openError(err)
	}
	if !ok {
		if ctx == nil {
			return nil, false, l.held(nil)
		}
		if abandoned, err := l.wait(ctx, fl, d); err != nil {
			keep = abandoned
			return nil, false, err
		}
	}
	le, err = l.claim(fl, d)
	if errors.Is(err, errReplaced) {
		fl.Close()
		return nil, true, nil
	}
	if err != nil {
		fl.Close()
		return nil, false, err
	}
	return le, false, nil
}

// wait blocks in flock(2) until fl is locked or ctx is done. When ctx ends
// first, the blocked goroutine is abandoned (abandoned is true): it releases
// the lock if it ever gets it, then closes d, which it opens fl through.
func (l *Lock) wait(ctx context.Context, fl *flock.Flock, d *dir) (abandoned bool, err error) {
	done := make(chan error, 1)
	go func() { done <- fl.Lock() }()
	select {
	case err := <-done:
		if err != nil {
			return false, l.openError(err)
		}
		return false, nil
	case <-ctx.Done():
		go func() {
			if <-done == nil {
				fl.Close()
			}
			d.close()
		}()
		return true, l.held(ctx.Err())
	}
}

func (l *Lock) held(ctxErr error) error {
	h, err := inspect(l.opts.Path)
	if err != nil {
		h = nil
	}
	return &HeldError{Path: l.opts.Path, Holder: h, Err: ctxErr}
}

// openError turns an open or flock failure into a path error, and a symlink
// into an *UnsafeError.
func (l *Lock) openError(err error) error {
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
