package pidfile

import (
	"github.com/guardkit/guard/internal/proc"
)

// Parse parses the content of a PID file: ASCII decimal digits, optionally
// followed by exactly one "\n", and nothing else -- no sign, no spaces or
// tabs, no leading zeros, no hexadecimal, at most 10 digits. The value must
// satisfy 2 <= pid < pid_max (proc.ParsePID, which guard's lock records use
// too), so it can never name init, a process group or "every process", and a
// number that would wrap in a 32-bit pid_t (4294967295 becoming -1) is
// refused before any conversion.
//
// It returns the PID, or a *MalformedError (with an empty Path) that matches
// ErrMalformed.
func Parse(b []byte) (int, error) {
	s := b
	if n := len(s); n > 0 && s[n-1] == '\n' {
		s = s[:n-1]
	}
	pid, err := proc.ParsePID(string(s))
	if err != nil {
		return 0, &MalformedError{Content: quote(b), Reason: err.Error()}
	}
	return pid, nil
}
