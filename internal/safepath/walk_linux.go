package safepath

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// maxLinks is the most symbolic links OpenDir follows for one path: the
// kernel's own limit (MAXSYMLINKS).
const maxLinks = 40

// Options adjust the rule of OpenDir. The zero value is the rule for
// writers, and the only one to write with.
type Options struct {
	// AnyOwner accepts directories owned by any user (they must still not
	// be writable by group or others unless sticky), and follows a symbolic
	// link owned by root, the caller or the owner of the directory holding
	// it. It is for readers that judge each file by its owner, such as the
	// PID file another user's daemon writes in its own directory: that user
	// controls such a path anyway. Dir.OpenFile then also trusts files of
	// the directory's owner.
	AnyOwner bool
}

// Dir is a directory opened and checked by OpenDir. Its descriptor is an
// O_PATH one: it names the directory for *at system calls, and nothing else.
type Dir struct {
	fd   int
	path string
	st   unix.Stat_t
	opts Options
}

// FD returns the directory's O_PATH descriptor, valid until Close.
func (d *Dir) FD() int { return d.fd }

// Path returns the directory's absolute path as resolved, without symbolic
// links, "." or "..". It can go stale: the directory may be renamed since.
func (d *Dir) Path() string { return d.path }

// Stat returns the directory's stat(2) as OpenDir found it.
func (d *Dir) Stat() unix.Stat_t { return d.st }

// Close closes the descriptor. It is idempotent; it removes nothing.
func (d *Dir) Close() error {
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

func (d *Dir) join(name string) string { return path.Join(d.path, name) }

// OpenDir opens the directory p, resolving it from "/" one component at a
// time under the rule of the package (see the package doc); a relative p is
// taken from the working directory. ".." goes to the parent of the directory
// reached so far, as the kernel does, not lexically.
//
// Errors: an *UnsafeError naming the directory or link at fault; an
// *fs.PathError naming p for a missing component (fs.ErrNotExist), a
// component that is not a directory (ENOTDIR), denied access
// (fs.ErrPermission) or any other failed system call.
func OpenDir(p string, opts Options) (*Dir, error) {
	if p == "" {
		return nil, &fs.PathError{Op: "open directory", Path: p, Err: unix.ENOENT}
	}
	abs := p
	if !strings.HasPrefix(p, "/") {
		wd, err := os.Getwd()
		if err != nil {
			return nil, &fs.PathError{Op: "open directory", Path: p, Err: err}
		}
		abs = wd + "/" + p
	}
	w := &walker{opts: opts, euid: uint32(os.Geteuid()), given: p, fd: -1}
	if err := w.root(); err != nil {
		return nil, err
	}
	for pending := strings.Split(abs, "/"); len(pending) > 0; {
		name := pending[0]
		pending = pending[1:]
		more, err := w.step(name)
		if err != nil {
			w.close()
			return nil, err
		}
		pending = append(more, pending...)
	}
	if r := w.dirUnsafe(&w.st); r != "" {
		w.close()
		return nil, &UnsafeError{Path: w.where(), Reason: r}
	}
	return &Dir{fd: w.fd, path: w.where(), st: w.st, opts: opts}, nil
}

// walker is the state of one OpenDir: the directory reached so far.
type walker struct {
	opts  Options
	euid  uint32
	given string // the path as the caller gave it, for errors
	fd    int
	st    unix.Stat_t
	parts []string // the components of the directory reached so far
	links int
}

func (w *walker) where() string { return "/" + strings.Join(w.parts, "/") }

func (w *walker) close() {
	if w.fd >= 0 {
		unix.Close(w.fd)
		w.fd = -1
	}
}

func (w *walker) fail(op string, err error) error {
	return &fs.PathError{Op: op, Path: w.given, Err: err}
}

// root makes "/" the directory reached so far.
func (w *walker) root() error {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return w.fail("open directory", err)
	}
	return w.enter(fd, nil)
}

// enter makes fd, whose components are parts, the directory reached so far.
func (w *walker) enter(fd int, parts []string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return w.fail("stat", err)
	}
	w.close()
	w.fd, w.st, w.parts = fd, st, parts
	return nil
}

// step looks name up in the directory reached so far and enters it. For a
// symbolic link it returns the components of its target, to walk next.
func (w *walker) step(name string) (more []string, err error) {
	if name == "" || name == "." {
		return nil, nil
	}
	// Nothing is looked up in a directory that others could change.
	if r := w.dirUnsafe(&w.st); r != "" {
		return nil, &UnsafeError{Path: w.where(), Reason: r}
	}
	const flags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	if name == ".." {
		if len(w.parts) == 0 {
			return nil, nil // "/.." is "/"
		}
		fd, err := unix.Openat(w.fd, "..", flags, 0)
		if err != nil {
			return nil, w.fail("open directory", err)
		}
		return nil, w.enter(fd, w.parts[:len(w.parts)-1])
	}
	fd, err := unix.Openat(w.fd, name, flags, 0)
	if err == nil {
		return nil, w.enter(fd, append(w.parts[:len(w.parts):len(w.parts)], name))
	}
	if !errors.Is(err, unix.ELOOP) && !errors.Is(err, unix.ENOTDIR) {
		return nil, w.fail("open directory", err)
	}
	var lst unix.Stat_t
	if serr := unix.Fstatat(w.fd, name, &lst, unix.AT_SYMLINK_NOFOLLOW); serr != nil {
		return nil, w.fail("open directory", err)
	}
	if lst.Mode&unix.S_IFMT != unix.S_IFLNK {
		return nil, w.fail("open directory", unix.ENOTDIR)
	}
	return w.link(name, &lst)
}

// link decides about the symbolic link name, found in the directory reached
// so far, and returns the components of its target.
func (w *walker) link(name string, lst *unix.Stat_t) ([]string, error) {
	at := path.Join(w.where(), name)
	target, err := readlinkat(w.fd, name)
	if err != nil {
		return nil, &fs.PathError{Op: "readlink", Path: at, Err: err}
	}
	if !w.ownerTrusted(lst.Uid, w.st.Uid) {
		return nil, &UnsafeError{Path: at, Reason: fmt.Sprintf(
			"symbolic link (to %q) owned by uid %d, neither root nor us (uid %d); not following it", target, lst.Uid, w.euid)}
	}
	if w.links++; w.links > maxLinks {
		return nil, &UnsafeError{Path: at, Reason: fmt.Sprintf("more than %d symbolic links on the way (a loop?)", maxLinks)}
	}
	if target == "" {
		return nil, w.fail("open directory", unix.ENOENT)
	}
	if strings.HasPrefix(target, "/") {
		if err := w.root(); err != nil {
			return nil, err
		}
	}
	return strings.Split(target, "/"), nil
}

// ownerTrusted says whether a link or file owned by uid, in a directory
// owned by dirUID, may be trusted.
func (w *walker) ownerTrusted(uid, dirUID uint32) bool {
	return uid == 0 || uid == w.euid || w.opts.AnyOwner && uid == dirUID
}

// dirUnsafe says why a directory breaks the rule, or "".
func (w *walker) dirUnsafe(st *unix.Stat_t) string {
	return dirUnsafe(st, w.euid, w.opts)
}

func dirUnsafe(st *unix.Stat_t, euid uint32, opts Options) string {
	if !opts.AnyOwner && st.Uid != 0 && st.Uid != euid {
		return fmt.Sprintf("directory owned by uid %d, neither root nor us (uid %d)", st.Uid, euid)
	}
	if st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0 {
		return fmt.Sprintf("directory writable by other users (mode %04o) without the sticky bit", st.Mode&0o7777)
	}
	return ""
}

// readlinkat reads the target of the symbolic link name in dirfd.
func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}
