package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/guardkit/guard/daemon"
	"github.com/guardkit/guard/internal/safepath"
)

// daemonize detaches guard run (--detach). The starting process does not
// return from it: it exits 0 once the daemon reports the job started, or
// with the daemon's own error and exit code. Paths are made absolute first,
// since the daemon runs in "/".
func (o *runOpts) daemonize(argv []string) (*daemon.Handle, error) {
	for _, p := range []*string{&o.lock, &o.pidfile, &o.textfileDir} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return nil, err
			}
			*p = abs
		}
	}
	if strings.Contains(argv[0], "/") {
		abs, err := filepath.Abs(argv[0])
		if err != nil {
			return nil, err
		}
		argv[0] = abs
	} else if !daemon.Reexecuted() {
		// Fail in the starting process, where the user can see it.
		if _, err := exec.LookPath(argv[0]); err != nil {
			return nil, exitf(127, "cannot start %s: %v", argv[0], err)
		}
	}
	out := o.output
	if out == "syslog" {
		out = "" // the daemon's stdio is /dev/null; the job's goes to syslog
	}
	if out != "" {
		abs, err := filepath.Abs(out)
		if err != nil {
			return nil, err
		}
		out = abs
		if err := checkOutput(out); err != nil {
			return nil, err
		}
	}
	h, err := daemon.Detach(daemon.DetachOptions{Output: out})
	if err != nil {
		return nil, fmt.Errorf("detach: %w", err)
	}
	return h, nil
}

// checkOutput opens --output FILE as the daemon will (safepath: no link
// followed that another user controls, no directory others can write
// without the sticky bit, a regular file of root's or ours; created 0640 less
// the umask), in the starting process only, so that a refusal exits 78 (73
// for a missing directory) with the reason, instead of the daemon's generic
// start failure.
func checkOutput(path string) error {
	if daemon.Reexecuted() {
		return nil
	}
	if ok, _ := daemon.ShouldDetach(); !ok {
		return nil // the output is not used
	}
	f, err := safepath.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	return f.Close()
}
