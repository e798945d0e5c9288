package pidfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/internal/proc"
	"github.com/guardkit/guard/internal/safepath"
)

// File is a PID file created by Write: Path and PID are what was written.
// It holds no open descriptor and needs no Close; Remove deletes the file
// only while the path still names it.
type File struct {
	Path string
	PID  int

	mu       sync.Mutex
	dev, ino uint64 // of the file written
	dirDev   uint64 // of its directory
	dirIno   uint64
	done     bool // removed (or found gone)
}

// Write atomically replaces the PID file at path with "PID\n": it creates a
// temporary file next to it (O_EXCL|O_NOFOLLOW, mode perm regardless of the
// umask), writes and fsyncs it, renames it over path and fsyncs the
// directory (safepath's one atomic writer). Readers see the old file or the
// new one, never a partial one. A crash between create and rename can leave
// the temporary file behind as ".NAME.RANDOM.tmp"; nothing reads it.
//
// It refuses (an *UnsafeError) when the directory, or any directory or
// symbolic link on the way to it, breaks the trust rule for writers (see
// safety.go: every directory root's or the caller's, not writable by others
// unless sticky, links only root's or the caller's), or path exists as a
// symbolic link, a directory or anything but a trusted regular file. It also
// refuses to replace a PID file that names another live process: one that
// started no later than the file was written (Running, as Inspect says),
// which is not this writer's to take over. It replaces a trusted regular
// file whose PID is pid, dead, reused or not a valid PID. It never follows,
// truncates or chowns an existing file. perm must be permission bits not
// writable by group or others, and pid must satisfy proc.ValidPID;
// otherwise the error matches fs.ErrInvalid. Other failures are
// *fs.PathError naming the path.
func Write(path string, pid int, perm os.FileMode) (*File, error) {
	if perm&^0o777 != 0 || perm&0o022 != 0 {
		return nil, &os.PathError{Op: "write pid file", Path: path,
			Err: fmt.Errorf("mode %04o: must be permission bits that only the owner can write: %w", uint32(perm), fs.ErrInvalid)}
	}
	if !proc.ValidPID(pid) {
		return nil, &os.PathError{Op: "write pid file", Path: path,
			Err: fmt.Errorf("pid %d out of range: %w", pid, fs.ErrInvalid)}
	}
	d, err := openDir(path, forWriting)
	if err != nil {
		return nil, err
	}
	defer d.close()
	st, err := d.lstat()
	switch {
	case errors.Is(err, unix.ENOENT):
	case err != nil:
		return nil, err
	default:
		if err := d.trust(&st); err != nil {
			return nil, err
		}
		if err := d.refuseLive(pid, &st); err != nil {
			return nil, err
		}
	}
	fi, err := d.sd.WriteFile(d.name, []byte(strconv.Itoa(pid)+"\n"), perm)
	if errors.Is(err, safepath.ErrNotSynced) {
		unix.Unlinkat(d.fd, d.name, 0) // ours: we just renamed it there
	}
	if err != nil {
		return nil, err
	}
	fst, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, &os.PathError{Op: "stat", Path: path, Err: errors.ErrUnsupported}
	}
	return &File{Path: path, PID: pid, dev: fst.Dev, ino: fst.Ino, dirDev: d.st.Dev, dirIno: d.st.Ino}, nil
}

// refuseLive refuses to replace the existing PID file (lstat st) when it
// names a live process other than pid that started before it was written.
func (d *dir) refuseLive(pid int, st *unix.Stat_t) error {
	content, err := d.readName()
	if err != nil {
		return err
	}
	old, err := Parse([]byte(content))
	if err != nil || old == pid {
		return nil // malformed, or ours: nothing of another's to keep
	}
	if state, _, _ := check(old, time.Unix(st.Mtim.Unix())); state != Running {
		return nil
	}
	return &UnsafeError{Path: d.path, Reason: fmt.Sprintf(
		"names PID %d, a live process that started before the file was written; not replacing it (stop that process, or remove the file if it is not its PID file)", old)}
}

// Remove deletes the PID file, but only while its path still names the file
// Write created (same device and inode, found without following links, in
// the same directory) and the file still holds what Write put there.
// Otherwise it leaves the path alone and returns an error that matches
// ErrReplaced and says what changed. A path (or directory) that no longer
// exists is not an error: there is nothing to remove. A directory that has
// become writable by others since Write is refused with an *UnsafeError;
// other failures are *fs.PathError.
//
// Remove is idempotent and safe for concurrent use; after it has removed
// the file (or found it gone), it returns nil without looking again. The
// check and the unlink are two steps: only the lock that made this process
// the writer keeps another cooperating writer out in between.
func (f *File) Remove() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return nil
	}
	d, err := openDir(f.Path, forWriting)
	if errors.Is(err, fs.ErrNotExist) {
		f.done = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove pid file: %w", err)
	}
	defer d.close()
	replaced := func(why string) error {
		return fmt.Errorf("remove pid file %s: %s; left it in place: %w", f.Path, why, ErrReplaced)
	}
	if d.st.Dev != f.dirDev || d.st.Ino != f.dirIno {
		return replaced("its directory was replaced")
	}
	st, err := d.lstat()
	if errors.Is(err, unix.ENOENT) {
		f.done = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove pid file: %w", err)
	}
	if st.Dev != f.dev || st.Ino != f.ino {
		return replaced("the path names another file now")
	}
	want := strconv.Itoa(f.PID) + "\n"
	if got, err := d.readName(); err != nil {
		return fmt.Errorf("remove pid file: %w", err)
	} else if got != want {
		return replaced(fmt.Sprintf("its content changed to %s", quote([]byte(got))))
	}
	if err := unix.Unlinkat(d.fd, d.name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "remove", Path: f.Path, Err: err}
	}
	f.done = true
	return d.sd.Sync()
}

// readName reads up to maxSize+1 bytes of the regular file d.name.
func (d *dir) readName() (string, error) {
	fd, err := unix.Openat(d.fd, d.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", &os.PathError{Op: "open", Path: d.path, Err: err}
	}
	f := os.NewFile(uintptr(fd), d.path)
	defer f.Close()
	buf := make([]byte, maxSize+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	return string(buf[:n]), nil
}
