package proc

import (
	"errors"
	"fmt"
	"strconv"
)

// ParsePID parses a PID as written by a well-behaved program: ASCII decimal
// digits only, no sign, no spaces, no leading zeros, at most 10 digits, and
// 2 <= pid < pid_max. The number is range-checked before any conversion to a
// narrower type, so a value that would wrap to -1 in a 32-bit pid_t is
// refused rather than turned into "every process".
func ParsePID(s string) (int, error) {
	if s == "" {
		return 0, errors.New("empty")
	}
	if len(s) > 10 {
		return 0, fmt.Errorf("%.12q...: too long", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q: not a decimal number", s)
		}
	}
	if s[0] == '0' {
		return 0, fmt.Errorf("%q: leading zero or zero", s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	if n < 2 || n >= int64(PIDMax()) {
		return 0, fmt.Errorf("%q: out of range 2..%d", s, PIDMax()-1)
	}
	return int(n), nil
}
