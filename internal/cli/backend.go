package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/guardkit/guard/instance"
)

// Backend keeps locks somewhere other than local files. A binary built with
// one (guard-etcd) passes it in Config; plain guard has none and hands a
// command line that asks for one over to the binary that has it.
type Backend interface {
	// Flags registers the backend's own flags on every command's flag set.
	Flags(fs *flag.FlagSet)
	// Open returns the lock that --lock (a key) or --name names, and how
	// messages name it. name is the job's name; argv the job's command (nil
	// for status, stop and reload).
	Open(lock, name string, argv []string) (lk instance.Locker, path string, err error)
}

// etcdBinary serves every command whose lock lives in etcd.
const etcdBinary = "guard-etcd"

// wantsEtcd reports whether the command line or the environment asks for
// the etcd backend (--etcd, or GUARD_ETCD_ENDPOINTS).
func (c *CLI) wantsEtcd(args []string) bool {
	if c.getenv("GUARD_ETCD_ENDPOINTS") != "" {
		return true
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--etcd" || a == "-etcd" || strings.HasPrefix(a, "--etcd=") || strings.HasPrefix(a, "-etcd=") {
			return true
		}
	}
	return false
}

// handOver replaces this process with guard-etcd, found beside this
// binary or in PATH, running the same command line. It returns only on
// failure.
func (c *CLI) handOver(args []string) error {
	bin := ""
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), etcdBinary); isExecutable(p) {
			bin = p
		}
	}
	if bin == "" {
		p, err := exec.LookPath(etcdBinary)
		if err != nil {
			return exitf(exitUnavailable, "the lock is in etcd (--etcd or GUARD_ETCD_ENDPOINTS), which %s serves, and it is not installed: build it with 'make build' (module etcd/) and put it beside guard or in PATH", etcdBinary)
		}
		bin = p
	}
	err := syscall.Exec(bin, append([]string{etcdBinary}, args...), c.environ())
	return fmt.Errorf("exec %s: %w", bin, err)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// open returns the lock the flags name, the path messages use for it, and
// the job's name; for local files it creates the default directory if
// needed.
func (lf *lockFlags) open(argv []string) (instance.Locker, string, string, error) {
	if lf.c.backend == nil {
		path, name, err := lf.resolve()
		if err != nil {
			return nil, "", "", err
		}
		lk, err := lf.newLock(path, name, argv)
		return lk, path, name, err
	}
	name := lf.name
	switch {
	case name != "" && !validName(name):
		return nil, "", "", usagef("--name %q: use letters, digits, '.', '_', '-', '@' (not leading '.' or '-')", name)
	case name == "" && lf.lock == "":
		return nil, "", "", usagef("need --lock KEY or --name NAME")
	case name == "":
		name = filepath.Base(lf.lock)
	}
	lk, path, err := lf.c.backend.Open(lf.lock, name, argv)
	return lk, path, name, err
}

// errNoBackendControl is the answer of commands a backend does not serve yet.
var errNoBackendControl = errors.New("not available for this lock backend yet")
