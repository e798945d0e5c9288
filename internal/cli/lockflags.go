package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/guardkit/guard/instance"
	"github.com/guardkit/guard/internal/safepath"
)

// lockFlags are the flags every command takes to name the lock.
type lockFlags struct {
	lock     string
	name     string
	allowNet bool
	mode     os.FileMode // guard run --lock-mode; 0 means instance.DefaultMode
	c        *CLI        // the command line they were parsed by
}

func (lf *lockFlags) register(fs *flagSet) {
	lf.c = fs.c
	fs.StringVar(&lf.lock, "lock", "", "lock file `PATH`")
	fs.StringVar(&lf.name, "name", "", "job `NAME` (logs, metrics); picks NAME.lock in the default directory when --lock is absent")
	fs.BoolVar(&lf.allowNet, "allow-network-fs", false, "allow a lock file on a network file system (NFS, CIFS, ...)")
	if lf.c.backend != nil {
		lf.c.backend.Flags(fs.FlagSet)
	}
}

// validName accepts job names that are safe as file names and metric values.
func validName(n string) bool {
	if n == "" || len(n) > 128 || n[0] == '.' || n[0] == '-' {
		return false
	}
	for _, r := range n {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-@", r)
		if !ok {
			return false
		}
	}
	return true
}

// resolve returns the lock path and the job name, creating the default
// directory when the path is derived from --name.
func (lf *lockFlags) resolve() (path, name string, err error) {
	if lf.name != "" && !validName(lf.name) {
		return "", "", usagef("--name %q: use letters, digits, '.', '_', '-', '@' (not leading '.' or '-')", lf.name)
	}
	if lf.lock != "" {
		name = lf.name
		if name == "" {
			name = strings.TrimSuffix(filepath.Base(lf.lock), ".lock")
		}
		return lf.lock, name, nil
	}
	if lf.name == "" {
		return "", "", usagef("need --lock PATH or --name NAME")
	}
	dir, err := defaultDir(lf.c.getenv)
	if err != nil {
		return "", "", err
	}
	return filepath.Join(dir, lf.name+".lock"), lf.name, nil
}

// defaultDir returns (creating it if missing) /run/guard for root,
// $XDG_RUNTIME_DIR/guard otherwise, or $GUARD_DIR. The directory and the
// way to it are resolved with safepath: a link or directory that another
// user controls is refused (78), and the directory is created with mkdirat
// in its checked parent, mode 0755 for root and 0700 otherwise, whatever
// the umask.
func defaultDir(getenv func(string) string) (string, error) {
	dir, mode := getenv("GUARD_DIR"), os.FileMode(0o755)
	if dir == "" {
		if os.Geteuid() == 0 {
			dir = "/run/guard"
		} else if x := getenv("XDG_RUNTIME_DIR"); x != "" {
			dir, mode = filepath.Join(x, "guard"), 0o700
		} else {
			return "", exitf(exitCantCreate, "no default lock directory: XDG_RUNTIME_DIR is not set; use --lock PATH or set GUARD_DIR")
		}
	}
	if os.Getuid() != 0 {
		mode = 0o700
	}
	d, err := safepath.OpenDir(dir, safepath.Options{})
	if errors.Is(err, fs.ErrNotExist) {
		var parent *safepath.Dir
		if parent, err = safepath.OpenDir(filepath.Dir(dir), safepath.Options{}); err == nil {
			err = parent.Mkdir(filepath.Base(dir), mode)
			parent.Close()
		}
		if err == nil || errors.Is(err, fs.ErrExist) {
			d, err = safepath.OpenDir(dir, safepath.Options{})
		}
	}
	if err != nil {
		return "", fmt.Errorf("lock directory: %w", err)
	}
	d.Close()
	return dir, nil
}

// newLock builds the instance lock for the resolved path.
func (lf *lockFlags) newLock(path, name string, argv []string) (*instance.FileLocker, error) {
	return instance.New(instance.Options{Path: path, Name: name, Command: argv, Mode: lf.mode, AllowNetworkFS: lf.allowNet})
}
