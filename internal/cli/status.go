package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/guardkit/guard/instance"
)

// LSB status codes (status) and init-script codes (reload).
const (
	lsbRunning          = 0
	lsbStale            = 1
	lsbNotRunning       = 3
	lsbUnknown          = 4
	lsbNotRunningAction = 7
)

// targetFlags name what status, stop and reload act on: a lock, or a
// classic PID file written by some other daemon.
type targetFlags struct {
	lockFlags
	pidfile string
	exe     string
}

func (t *targetFlags) register(fs *flagSet) {
	t.lockFlags.register(fs)
	fs.StringVar(&t.pidfile, "pidfile", "", "a classic PID file `PATH` of a daemon guard did not start (alone, without --lock/--name)")
	fs.StringVar(&t.exe, "exec", "", "with --pidfile: act only if the process runs this executable `PATH`")
}

func (t *targetFlags) check() error {
	if t.pidfile != "" && (t.lock != "" || t.name != "") {
		return usagef("--pidfile is used alone, without --lock or --name")
	}
	if t.exe != "" && t.pidfile == "" {
		return usagef("--exec goes with --pidfile")
	}
	if t.c.parseOnly {
		if t.pidfile == "" && t.lock == "" && t.name == "" {
			return usagef("need --lock PATH, --name NAME or --pidfile PATH")
		}
		return errParsed
	}
	return nil
}

// inspect finds the holder of the lock named by the flags.
func (t *targetFlags) inspect() (*instance.Holder, string, error) {
	lk, _, name, err := t.open(nil)
	if err != nil {
		return nil, "", err
	}
	h, err := lk.Inspect(context.Background())
	return h, name, err
}

func (c *CLI) statusCmd(args []string) error {
	var t targetFlags
	var asJSON bool
	fs := c.newFlags("status", "[--lock PATH | --name NAME | --pidfile PATH [--exec PATH]] [--json]")
	t.register(fs)
	fs.BoolVar(&asJSON, "json", false, "print the holder record as JSON")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := t.check(); err != nil {
		return err
	}
	if t.pidfile != "" {
		return c.pidfileStatus(&t, asJSON)
	}
	h, name, err := t.inspect()
	if errors.Is(err, os.ErrPermission) || errors.Is(err, instance.ErrUnavailable) {
		// LSB: status is 4 when it cannot tell (a 0600 lock file of
		// another user, an etcd that cannot be reached).
		return exitf(lsbUnknown, "%v; cannot tell who holds the lock", err)
	}
	if err != nil {
		return err
	}
	code := statusCode(h)
	if asJSON {
		return c.printJSON(holderJSON(h, name), code)
	}
	line := fmt.Sprintf("%s: %s", h.Path, describeStatus(h))
	if code == lsbRunning {
		fmt.Fprintln(c.stdout, line)
		return nil
	}
	fmt.Fprintln(c.stdout, line)
	return silent(code)
}

func statusCode(h *instance.Holder) int {
	switch h.State {
	case instance.Held:
		return lsbRunning
	case instance.Stale:
		return lsbStale
	case instance.Free:
		return lsbNotRunning
	}
	return lsbUnknown
}

func describeStatus(h *instance.Holder) string {
	switch h.State {
	case instance.Held:
		s := "running, " + h.Describe()
		if h.Record != nil && h.Record.PID > 0 && (h.Verified || h.Orphaned) {
			s += fmt.Sprintf(", token %d", h.Record.Token)
		}
		if others := jobProcs(h); h.Verified && others != "" {
			s += "; its job's processes " + others + " hold it too"
		}
		return s
	case instance.Free:
		return "not running (" + h.Reason + ")"
	case instance.Stale:
		return "not running, stale: " + h.Reason
	}
	return "unknown: " + h.Reason
}

// jobProcs lists the processes other than the verified holder that hold
// the lock (those a SIGKILL of guard would leave holding it), at most ten.
func jobProcs(h *instance.Holder) string {
	var s []string
	for _, p := range h.Procs {
		if !p.Recorded {
			s = append(s, p.String())
		}
	}
	if len(s) > 10 {
		s = append(s[:10], fmt.Sprintf("and %d more", len(s)-10))
	}
	return strings.Join(s, ", ")
}

// statusJSON is the JSON form of a lock's status.
type statusJSON struct {
	Path     string     `json:"path"`
	Name     string     `json:"name,omitempty"`
	State    string     `json:"state"`
	Held     bool       `json:"held"`
	PID      int        `json:"pid,omitempty"`
	LockPID  int        `json:"lock_pid,omitempty"`
	Verified bool       `json:"verified"`
	Since    *time.Time `json:"since,omitempty"`
	Token    uint64     `json:"token,omitempty"`
	Host     string     `json:"host,omitempty"`
	Command  string     `json:"command,omitempty"`
	Released *time.Time `json:"released,omitempty"`
	LastPID  int        `json:"last_pid,omitempty"`
	Reason   string     `json:"reason,omitempty"`
	// Holders are the processes seen holding the lock; Orphaned says they
	// are the job of a recorded holder that is dead.
	Holders  []holderProcJSON `json:"holders"`
	Orphaned bool             `json:"orphaned,omitempty"`
}

// holderProcJSON is one process holding the lock.
type holderProcJSON struct {
	PID        int    `json:"pid"`
	Comm       string `json:"comm"`
	StartTicks uint64 `json:"start_ticks"`
	FD         int    `json:"fd"`
	Locker     int    `json:"locker_pid"`
	Recorded   bool   `json:"recorded"`
}

func holderJSON(h *instance.Holder, name string) statusJSON {
	j := statusJSON{Path: h.Path, Name: name, State: h.State.String(), Held: h.State == instance.Held,
		LockPID: h.LockPID, Verified: h.Verified, Reason: h.Reason, Orphaned: h.Orphaned,
		Holders: []holderProcJSON{}}
	for _, p := range h.Procs {
		j.Holders = append(j.Holders, holderProcJSON{PID: p.PID, Comm: p.Comm, StartTicks: p.StartTicks,
			FD: p.FD, Locker: p.Locker, Recorded: p.Recorded})
	}
	if r := h.Record; r != nil {
		j.PID, j.Token, j.Host, j.Command, j.LastPID = r.PID, r.Token, r.Host, r.Command, r.LastPID
		if r.Name != "" {
			j.Name = r.Name
		}
		if !r.Acquired.IsZero() {
			t := r.Acquired
			j.Since = &t
		}
		if !r.Released.IsZero() {
			t := r.Released
			j.Released = &t
		}
	}
	return j
}

func (c *CLI) printJSON(v any, code int) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	if code != 0 {
		return silent(code)
	}
	return nil
}
