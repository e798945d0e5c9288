package instance

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/internal/safepath"
)

// networkFS lists statfs f_type magic numbers of file systems whose flock(2)
// is emulated, unreliable or not shared between hosts.
var networkFS = map[int64]string{
	0x6969:            "nfs",
	0x517b:            "smb",
	-11317950:         "cifs", // 0xff534d42 as a signed 32-bit value
	0xff534d42:        "cifs",
	-29666238:         "smb2", // 0xfe534d42
	0xfe534d42:        "smb2",
	0x00c36400:        "ceph",
	0x01021997:        "9p",
	0x5346414f:        "afs",
	0x6b414653:        "afs",
	0x01161970:        "gfs2",
	0x7461636f:        "ocfs2",
	0x0bd00bd0:        "lustre",
	0x73757245:        "coda",
	0x65735546:        "fuse",
	0x47504653:        "gpfs",
	0x013111a8:        "ibrix",
	0x19830326:        "fhgfs",
	int64(0xaad7aaea): "panfs",
	int64(0x564c4b5a): "vboxsf",
}

// NetworkFS returns the name of the network file system with statfs magic
// f_type, or "" for a local one.
func NetworkFS(ftype int64) string { return networkFS[ftype] }

// dir is an opened, checked directory: the lock file is always opened
// through it, so a directory renamed or swapped for a symlink after the check
// cannot redirect guard.
type dir struct {
	sd   *safepath.Dir
	fd   int
	path string // as the user named it
}

func (d *dir) close() { d.sd.Close() }

// openDir opens the directory that will hold a lock file through
// safepath.OpenDir, which refuses it (and any directory on the way) if users
// other than its owner and root can change its entries, and follows only
// symbolic links that root or we own in such directories. It also refuses a
// directory on a network file system (unless allowNet).
func openDir(path string, allowNet bool) (*dir, error) {
	sd, err := safepath.OpenDir(path, safepath.Options{})
	if err != nil {
		return nil, unsafeError(err)
	}
	fd := sd.FD()
	d := &dir{sd: sd, fd: fd, path: path}
	if err := d.check(allowNet); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// unsafeError turns a safepath refusal into an *UnsafeError.
func unsafeError(err error) error {
	var ue *safepath.UnsafeError
	if errors.As(err, &ue) {
		return &UnsafeError{Path: ue.Path, Reason: ue.Reason}
	}
	return err
}

func (d *dir) check(allowNet bool) error {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(d.fd, &sfs); err != nil {
		return &os.PathError{Op: "statfs", Path: d.path, Err: err}
	}
	if name := NetworkFS(int64(sfs.Type)); name != "" && !allowNet {
		return &UnsafeError{Path: d.path, Reason: fmt.Sprintf("on a network file system (%s); flock there is unreliable (allow it explicitly to use it anyway)", name)}
	}
	return nil
}

// lstatAt stats name in d without following a symlink.
func (d *dir) lstatAt(name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH)
	return st, err
}

// precheck refuses a lock path that exists as something other than a
// regular file, before anything opens it (opening a device can have effects).
func (d *dir) precheck(name, full string) error {
	st, err := d.lstatAt(name)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return &os.PathError{Op: "stat", Path: full, Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return &UnsafeError{Path: full, Reason: "is a symbolic link"}
	}
	if r := d.sd.FileUnsafe(&st); r != "" {
		return &UnsafeError{Path: full, Reason: r}
	}
	return nil
}
