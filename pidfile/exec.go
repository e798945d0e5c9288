package pidfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/internal/proc"
)

const deletedSuffix = " (deleted)"

// MatchesExec checks that process pid runs the executable at path, by
// comparing the device and inode of stat(path) with those of
// stat(/proc/PID/exe). Names do not matter: links and bind mounts to the same
// file match, a copy does not.
//
// It returns nil when they are the same file, and an *ExecError matching
// ErrExecMismatch when they differ -- in particular when the binary the
// process runs was deleted or replaced (a package upgrade) since it started;
// Reason then says so, since the process may be a genuine but old instance.
// A process without an executable (a kernel thread or a zombie) is also an
// *ExecError. Otherwise: an error matching proc.ErrGone when there is no
// such process, fs.ErrInvalid for a PID outside 2..pid_max-1, and an
// *fs.PathError for path or /proc/PID/exe (matching fs.ErrPermission when
// the caller may not inspect another user's process).
//
// MatchesExec says nothing about which process holds the PID; to tie the
// check to a PID file and a start time, use Info.Process.
func MatchesExec(pid int, path string) error {
	if !proc.ValidPID(pid) {
		return fmt.Errorf("pid %d out of range: %w", pid, fs.ErrInvalid)
	}
	link := "/proc/" + strconv.Itoa(pid) + "/exe"
	var got, want unix.Stat_t
	if err := unix.Stat(link, &got); err != nil {
		if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESRCH) {
			return &os.PathError{Op: "stat", Path: link, Err: err}
		}
		if _, serr := proc.ReadStat(pid); serr != nil {
			return serr
		}
		return &ExecError{PID: pid, Want: path, Reason: "it has no executable (a kernel thread or a zombie)"}
	}
	exe, err := os.Readlink(link)
	if err != nil {
		return err
	}
	if err := unix.Stat(path, &want); err != nil {
		if errors.Is(err, unix.ENOENT) && exe == path+deletedSuffix {
			return &ExecError{PID: pid, Want: path, Exe: exe,
				Reason: fmt.Sprintf("its binary was deleted since it started (/proc says %q)", exe)}
		}
		return &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if got.Dev == want.Dev && got.Ino == want.Ino {
		return nil
	}
	if strings.HasSuffix(exe, deletedSuffix) {
		return &ExecError{PID: pid, Want: path, Exe: exe, Reason: fmt.Sprintf(
			"its binary was deleted or replaced since it started (/proc says %q): an old instance?", exe)}
	}
	return &ExecError{PID: pid, Want: path, Exe: exe, Reason: "it runs " + strconv.Quote(exe)}
}
