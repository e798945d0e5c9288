package safepath

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"

	"golang.org/x/sys/unix"
)

// WriteFile replaces name, one path component, in d with data, atomically:
// readers see the old file or the new one, never a partial one. It creates
// ".NAME.RANDOM.tmp" in d (O_EXCL|O_NOFOLLOW, mode perm exactly, whatever
// the umask), writes and fsyncs it, renames it over name with renameat(2)
// and fsyncs d. It returns what fstat said of the new file.
//
// It does not judge what name was before: a caller that must not replace a
// symbolic link, a directory or a foreign file checks first. On failure the
// temporary file is removed and name is left as it was, except when only
// the final fsync of d failed: then the new file is in place and the error
// matches ErrNotSynced. A crash can leave the temporary file behind.
func (d *Dir) WriteFile(name string, data []byte, perm fs.FileMode) (fs.FileInfo, error) {
	if err := checkName(d.path, name); err != nil {
		return nil, err
	}
	tmp, fi, err := d.writeTemp(name, data, perm)
	if err != nil {
		return nil, err
	}
	if err := unix.Renameat(d.fd, tmp, d.fd, name); err != nil {
		unix.Unlinkat(d.fd, tmp, 0)
		return nil, &fs.PathError{Op: "rename", Path: d.join(name), Err: err}
	}
	if err := d.Sync(); err != nil {
		return fi, fmt.Errorf("%w: %w", err, ErrNotSynced)
	}
	return fi, nil
}

// writeTemp creates a new temporary file for name in d, holding data with
// mode perm and synced, and returns its name and stat.
func (d *Dir) writeTemp(name string, data []byte, perm fs.FileMode) (string, fs.FileInfo, error) {
	var tmp string
	var fd int
	var err error
	for range 10 {
		tmp = fmt.Sprintf(".%s.%016x.tmp", name, rand.Uint64())
		fd, err = unix.Openat(d.fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
		if !errors.Is(err, unix.EEXIST) {
			break
		}
	}
	if err != nil {
		return "", nil, &fs.PathError{Op: "create", Path: d.join(tmp), Err: err}
	}
	f := os.NewFile(uintptr(fd), d.join(tmp))
	err = unix.Fchmod(fd, uint32(perm.Perm())) // the umask applied to O_CREAT
	if err != nil {
		err = &fs.PathError{Op: "chmod", Path: f.Name(), Err: err}
	}
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	var fi fs.FileInfo
	if err == nil {
		fi, err = f.Stat()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		unix.Unlinkat(d.fd, tmp, 0)
		return "", nil, err
	}
	return tmp, fi, nil
}
