package pidfile

import (
	"errors"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// maxSize is the largest PID file Read accepts; "4194303\n" needs 8 bytes.
const maxSize = 64

// Snapshot is a PID file as Read found it. It is a snapshot: the file may be
// rewritten, replaced or removed as soon as Read returns.
type Snapshot struct {
	Path    string
	PID     int
	ModTime time.Time // last modification (wall clock), the moment the PID was written
	Dev     uint64    // device and inode: the identity of the file
	Ino     uint64
	UID     uint32 // owner
}

// Read reads and parses the PID file at path.
//
// It never follows a symbolic link in the final component, never opens
// anything but a regular file (so a FIFO or device cannot hang or affect
// it), and reads at most 64 bytes. The file must pass the trust rule:
//
//   - its directory is not writable by group or others, unless sticky;
//   - the file is owned by root, the caller's effective UID or the
//     directory's owner, and is not writable by group or others.
//
// Symbolic links in the directory part of path are followed when root, the
// caller or the owner of the directory holding them owns them, and the rule
// applies to every directory on the way and to the one they lead to
// (internal/safepath with AnyOwner).
//
// Errors: a missing file or directory yields an *fs.PathError matching
// fs.ErrNotExist, denied access one matching fs.ErrPermission; a file or
// directory that breaks the rule an *UnsafeError (ErrUnsafe); content that
// Parse rejects, or more than 64 bytes, a *MalformedError (ErrMalformed)
// with Path set. An empty file is malformed: a program that writes its PID
// file in place (truncate, then write) can be caught in between, and callers
// may retry once shortly after.
func Read(path string) (*Snapshot, error) {
	d, err := openDir(path, forReading)
	if err != nil {
		return nil, err
	}
	defer d.close()
	// Refuse anything but a trusted regular file before opening it: opening
	// a device can have effects, and a FIFO is the wrong thing to read.
	lst, err := d.lstat()
	if err != nil {
		return nil, err
	}
	if err := d.trust(&lst); err != nil {
		return nil, err
	}
	fd, err := unix.Openat(d.fd, d.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) {
		return nil, &UnsafeError{Path: path, Reason: "is a symbolic link"}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if err := d.trust(&st); err != nil { // swapped since the lstat
		return nil, err
	}
	buf := make([]byte, maxSize+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err // already an *fs.PathError naming path
	}
	if n > maxSize {
		return nil, &MalformedError{Path: path, Content: quote(buf[:n]), Reason: "larger than 64 bytes"}
	}
	pid, err := Parse(buf[:n])
	if err != nil {
		var me *MalformedError
		if errors.As(err, &me) {
			me.Path = path
		}
		return nil, err
	}
	return &Snapshot{
		Path:    path,
		PID:     pid,
		ModTime: time.Unix(st.Mtim.Unix()),
		Dev:     st.Dev,
		Ino:     st.Ino,
		UID:     st.Uid,
	}, nil
}
