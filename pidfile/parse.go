package pidfile

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"guard/internal/proc"
)

// maxDigits bounds a PID before it is converted: pid_max is at most 2^22, so
// no valid PID has more than 7 digits, and 10 digits always fit in int64.
const maxDigits = 10

// Parse parses the content of a PID file: ASCII decimal digits, optionally
// followed by exactly one "\n", and nothing else -- no sign, no spaces or
// tabs, no leading zeros, no hexadecimal, at most 10 digits. The value must
// satisfy 2 <= pid < pid_max (proc.ValidPID), so it can never name init,
// a process group or "every process", and a number that would wrap in a
// 32-bit pid_t (4294967295 becoming -1) is refused before any conversion.
//
// It returns the PID, or a *MalformedError (with an empty Path) that matches
// ErrMalformed.
func Parse(b []byte) (int, error) {
	s := b
	if n := len(s); n > 0 && s[n-1] == '\n' {
		s = s[:n-1]
	}
	bad := func(format string, args ...any) (int, error) {
		return 0, &MalformedError{Content: quote(b), Reason: fmt.Sprintf(format, args...)}
	}
	if len(s) == 0 {
		return bad("empty")
	}
	for i, c := range s {
		if c < '0' || c > '9' {
			return bad("unexpected %s at byte %d; want only decimal digits and one final newline", quoteByte(c), i)
		}
	}
	if len(s) > maxDigits {
		return bad("%d digits; no PID has more than %d", len(s), maxDigits)
	}
	if s[0] == '0' && len(s) > 1 {
		return bad("leading zero")
	}
	var n int64
	for _, c := range s {
		n = n*10 + int64(c-'0')
	}
	if max := proc.PIDMax(); n < 2 || n >= int64(max) {
		return bad("PID %d out of range; want 2 <= pid < pid_max (%d)", n, max)
	}
	return int(n), nil
}

// quoteByte quotes one byte of content: '-', '\t', or '\xd9' for a byte
// that is not ASCII.
func quoteByte(c byte) string {
	if c >= utf8.RuneSelf {
		return fmt.Sprintf(`'\x%02x'`, c)
	}
	return strconv.QuoteRuneToASCII(rune(c))
}
