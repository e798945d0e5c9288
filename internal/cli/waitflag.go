package cli

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/guardkit/guard/instance"
	"github.com/guardkit/guard/job"
)

// forever is the --wait value that waits indefinitely.
const forever = time.Duration(-1)

// waitValue is --wait: a duration, 0 (do not wait) or "forever".
type waitValue struct{ d time.Duration }

func (w *waitValue) String() string {
	if w.d == forever {
		return "forever"
	}
	return w.d.String()
}

func (w *waitValue) Set(s string) error {
	if s == "forever" || s == "infinity" {
		w.d = forever
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return fmt.Errorf("want a duration such as 30s, 0 or forever")
	}
	w.d = d
	return nil
}

// durationFlag parses a non-negative duration.
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return "0s"
	}
	return f.d.String()
}

func (f durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return fmt.Errorf("want a non-negative duration such as 10s")
	}
	*f.d = d
	return nil
}

// policyFlag is --leftovers.
type policyFlag struct{ p *job.Policy }

func (f policyFlag) String() string {
	if f.p == nil {
		return job.Kill.String()
	}
	return f.p.String()
}

func (f policyFlag) Set(s string) error {
	p, err := job.ParsePolicy(s)
	if err != nil {
		return errors.New("want kill, wait or ignore")
	}
	*f.p = p
	return nil
}

// modeFlag is --lock-mode: octal permission bits that let guard read and
// write the file and let nobody else write it.
type modeFlag struct{ m *os.FileMode }

func (f modeFlag) String() string {
	if f.m == nil || *f.m == 0 {
		return fmt.Sprintf("%04o", instance.DefaultMode)
	}
	return fmt.Sprintf("%04o", uint32(*f.m))
}

func (f modeFlag) Set(s string) error {
	n, err := strconv.ParseUint(s, 8, 32)
	switch {
	case err != nil || n > 0o777:
		return errors.New("want octal permission bits such as 0600 or 0640")
	case n&0o600 != 0o600:
		return errors.New("the owner needs read and write (0600)")
	case n&0o022 != 0:
		return errors.New("group or others could rewrite the holder's record; leave out their write bits")
	}
	*f.m = os.FileMode(n)
	return nil
}

// placeholder names a duration in help texts, as time.Duration flags do.
func (durationFlag) placeholder() string { return "DURATION" }

// choices are --leftovers' values, for help texts and completions.
func (policyFlag) choices() []string { return []string{"kill", "wait", "ignore"} }
