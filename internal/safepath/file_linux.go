package safepath

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// checkName accepts a single path component.
func checkName(dir, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return &fs.PathError{Op: "open", Path: strings.TrimSuffix(dir, "/") + "/" + name,
			Err: fmt.Errorf("%q is not a file name: %w", name, fs.ErrInvalid)}
	}
	return nil
}

// OpenFile opens the file path, its directory opened by OpenDir (zero
// Options) and the file by Dir.OpenFile, whose rules and errors it has.
func OpenFile(path string, flag int, perm fs.FileMode) (*os.File, error) {
	dir, name := filepath.Split(path)
	if err := checkName(dir, name); err != nil {
		return nil, err
	}
	if dir == "" {
		dir = "."
	}
	d, err := OpenDir(dir, Options{})
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.OpenFile(name, flag, perm)
}

// OpenFile opens name, one path component, in d with flag (os.O_*; also
// O_NOFOLLOW, O_NOCTTY and O_CLOEXEC) and, when it creates the file, mode
// perm less the umask. An existing name must be a regular file with a single
// link, owned by root or the caller (or, with Options.AnyOwner, the
// directory's owner); a symbolic link, anything but a regular file, a hard
// link or a foreign owner is an *UnsafeError, refused before it is opened,
// since opening a device or a FIFO can have effects. Other failures are
// *fs.PathError. The file is in blocking mode.
func (d *Dir) OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	if err := checkName(d.path, name); err != nil {
		return nil, err
	}
	full := d.join(name)
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil:
		if r := d.FileUnsafe(&st); r != "" {
			return nil, &UnsafeError{Path: full, Reason: r}
		}
	case !errors.Is(err, unix.ENOENT):
		return nil, &fs.PathError{Op: "stat", Path: full, Err: err}
	}
	// O_NONBLOCK: a FIFO planted after the check fails the open (ENXIO)
	// or is refused below, instead of blocking it.
	fd, err := unix.Openat(d.fd, name, flag|unix.O_NOFOLLOW|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, uint32(perm.Perm()))
	if errors.Is(err, unix.ELOOP) {
		return nil, &UnsafeError{Path: full, Reason: "is a symbolic link"}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: full, Err: err}
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: full, Err: err}
	}
	if r := d.FileUnsafe(&st); r != "" {
		unix.Close(fd)
		return nil, &UnsafeError{Path: full, Reason: r}
	}
	if flag&unix.O_NONBLOCK == 0 {
		if err := unix.SetNonblock(fd, false); err != nil {
			unix.Close(fd)
			return nil, &fs.PathError{Op: "fcntl", Path: full, Err: err}
		}
	}
	return os.NewFile(uintptr(fd), full), nil
}

// FileUnsafe says why a file found in d, with status st, must not be used,
// or "": it is not a regular file (a link, a directory, a device, ...), it
// belongs to a user other than root and the caller (and, with AnyOwner, the
// directory's owner), or it has more than one hard link.
func (d *Dir) FileUnsafe(st *unix.Stat_t) string {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFLNK:
		return "is a symbolic link"
	case unix.S_IFDIR:
		return "is a directory, not a regular file"
	default:
		return "is not a regular file"
	}
	euid := uint32(os.Geteuid())
	if st.Uid != 0 && st.Uid != euid && !(d.opts.AnyOwner && st.Uid == d.st.Uid) {
		return fmt.Sprintf("owned by uid %d, neither root nor us (uid %d)", st.Uid, euid)
	}
	if st.Nlink > 1 {
		return fmt.Sprintf("has %d hard links", st.Nlink)
	}
	return ""
}

// Mkdir creates the directory name, one path component, in d with mode
// perm exactly (the umask does not apply). An existing name is an error that
// matches fs.ErrExist; nothing is changed then. Other failures are
// *fs.PathError.
func (d *Dir) Mkdir(name string, perm fs.FileMode) error {
	if err := checkName(d.path, name); err != nil {
		return err
	}
	full := d.join(name)
	if err := unix.Mkdirat(d.fd, name, uint32(perm.Perm())); err != nil {
		return &fs.PathError{Op: "mkdir", Path: full, Err: err}
	}
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: full, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fchmod(fd, uint32(perm.Perm())); err != nil {
		return &fs.PathError{Op: "chmod", Path: full, Err: err}
	}
	return nil
}

// Sync fsyncs the directory, making renames and removals in it durable.
func (d *Dir) Sync() error {
	fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == nil {
		err = unix.Fsync(fd)
		unix.Close(fd)
	}
	if err != nil {
		return &fs.PathError{Op: "fsync", Path: d.path, Err: err}
	}
	return nil
}

// Writable reports, as an *fs.PathError, whether the caller cannot create
// files in d: a read-only file system (EROFS) or denied access (EACCES).
// It is an access(2) check, a hint that can go stale.
func (d *Dir) Writable() error {
	if err := unix.Faccessat(d.fd, ".", unix.W_OK|unix.X_OK, 0); err != nil {
		return &fs.PathError{Op: "access", Path: d.path, Err: err}
	}
	return nil
}
