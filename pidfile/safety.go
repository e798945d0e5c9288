package pidfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/internal/safepath"
)

// The trust rule shared by Read and Write (Promise 3 of the contract):
//
//   - The PID file's directory must not be writable by group or others,
//     unless it has the sticky bit (like /tmp), where others cannot rename
//     or delete files they do not own.
//   - The PID file itself must be owned by root, by the caller's effective
//     UID, or by the owner of its directory (who can replace any file there
//     anyway), and must not be writable by group or others.
//   - The final path component must be a regular file, never a symbolic link;
//     links in the directory part (/var/run -> /run) are followed and the
//     rule is applied to the directory they lead to, but only links that
//     root, the caller or the directory's owner (for readers; root or the
//     caller for writers) own are followed, and every directory on the way
//     must pass the same rule (internal/safepath). Writers also need every
//     directory to be root's or the caller's.

// dir is an opened directory: everything after the check goes through fd, so
// a directory renamed or swapped for a symlink afterwards cannot redirect it.
type dir struct {
	sd   *safepath.Dir
	fd   int    // sd's O_PATH descriptor
	path string // the pid file's path as given, for errors
	name string // the final component
	st   unix.Stat_t
}

// Directory rules: readers and writers. Both resolve the directory with
// safepath, which follows a symbolic link only when it is owned by root, us
// (or, for readers, the owner of the directory holding it) and refuses
// directories that others can write without the sticky bit.
var (
	// forWriting also requires every directory to be root's or ours.
	forWriting = safepath.Options{}
	// forReading accepts a directory of any owner: its owner is trusted
	// for files in it anyway (see the rule above).
	forReading = safepath.Options{AnyOwner: true}
)

// openDir opens the directory of path under the rule opts.
func openDir(path string, opts safepath.Options) (*dir, error) {
	name := filepath.Base(path)
	if path == "" || name == "." || name == ".." || name == string(filepath.Separator) {
		return nil, &os.PathError{Op: "open", Path: path, Err: unix.EINVAL}
	}
	sd, err := safepath.OpenDir(filepath.Dir(path), opts)
	if err != nil {
		var ue *safepath.UnsafeError
		if errors.As(err, &ue) {
			return nil, &UnsafeError{Path: path, Reason: ue.Path + ": " + ue.Reason}
		}
		return nil, err
	}
	return &dir{sd: sd, fd: sd.FD(), path: path, name: name, st: sd.Stat()}, nil
}

func (d *dir) close() { d.sd.Close() }

// lstat stats the final component without following a symlink.
func (d *dir) lstat() (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, d.name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return st, &os.PathError{Op: "stat", Path: d.path, Err: err}
	}
	return st, nil
}

// trust applies the file rule to st, the lstat or fstat of the PID file.
func (d *dir) trust(st *unix.Stat_t) error {
	if r := fileUnsafe(st, d.st.Uid); r != "" {
		return &UnsafeError{Path: d.path, Reason: r}
	}
	return nil
}

func fileUnsafe(st *unix.Stat_t, dirUID uint32) string {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFLNK:
		return "is a symbolic link"
	case unix.S_IFDIR:
		return "is a directory, not a regular file"
	case unix.S_IFIFO:
		return "is a FIFO, not a regular file"
	case unix.S_IFSOCK:
		return "is a socket, not a regular file"
	default:
		return "is a device, not a regular file"
	}
	euid := uint32(os.Geteuid())
	if st.Uid != 0 && st.Uid != euid && st.Uid != dirUID {
		return fmt.Sprintf("owned by uid %d, which is neither root, us (uid %d) nor the directory's owner (uid %d)",
			st.Uid, euid, dirUID)
	}
	if st.Mode&0o022 != 0 {
		return fmt.Sprintf("writable by other users (mode %04o)", st.Mode&0o7777)
	}
	return ""
}
