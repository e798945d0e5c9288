package proc

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// maxDigits bounds a PID before it is converted: pid_max is at most 2^22, so
// no valid PID has more than 7 digits, and 10 digits always fit in int64.
const maxDigits = 10

// ParsePID parses a PID as written by a well-behaved program: ASCII decimal
// digits only, no sign, no spaces, no leading zeros, at most 10 digits, and
// 2 <= pid < pid_max. The number is range-checked before any conversion to a
// narrower type, so a value that would wrap to -1 in a 32-bit pid_t is
// refused rather than turned into "every process". The error says, in
// words fit for a user, what is wrong.
func ParsePID(s string) (int, error) {
	if s == "" {
		return 0, errors.New("empty")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < '0' || c > '9' {
			return 0, fmt.Errorf("unexpected %s at byte %d; want only decimal digits", quoteByte(c), i)
		}
	}
	if len(s) > maxDigits {
		return 0, fmt.Errorf("%d digits; no PID has more than %d", len(s), maxDigits)
	}
	if s[0] == '0' && len(s) > 1 {
		return 0, errors.New("leading zero")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, err
	}
	if max := PIDMax(); n < 2 || n >= int64(max) {
		return 0, fmt.Errorf("PID %d out of range; want 2 <= pid < pid_max (%d)", n, max)
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
