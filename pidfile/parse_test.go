package pidfile

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/guardkit/guard/internal/proc"
)

func TestParse(t *testing.T) {
	max := proc.PIDMax()
	tests := []struct {
		name   string
		in     string
		want   int    // when reason is ""
		reason string // a substring of MalformedError.Reason
	}{
		{name: "pid and newline", in: "123\n", want: 123},
		{name: "no newline", in: "123", want: 123},
		{name: "smallest", in: "2\n", want: 2},
		{name: "pid_max-1", in: strconv.Itoa(max-1) + "\n", want: max - 1},
		{name: "empty", in: "", reason: "empty"},
		{name: "lone newline", in: "\n", reason: "empty"},
		{name: "zero", in: "0", reason: "out of range"},
		{name: "init", in: "1\n", reason: "out of range"},
		{name: "negative", in: "-5\n", reason: "unexpected '-'"},
		{name: "minus one", in: "-1\n", reason: "unexpected '-'"},
		{name: "plus", in: "+5\n", reason: "unexpected '+'"},
		{name: "leading space", in: " 5\n", reason: "unexpected ' '"},
		{name: "trailing space", in: "5 \n", reason: "unexpected ' '"},
		{name: "two newlines", in: "5\n\n", reason: `unexpected '\n' at byte 1`},
		{name: "CRLF", in: "5\r\n", reason: `unexpected '\r'`},
		{name: "newline first", in: "\n5", reason: `unexpected '\n' at byte 0`},
		{name: "hex", in: "0x10\n", reason: "unexpected 'x'"},
		{name: "leading zero", in: "010\n", reason: "leading zero"},
		{name: "trailing junk", in: "12a\n", reason: "unexpected 'a'"},
		{name: "second line", in: "12\n34\n", reason: `unexpected '\n'`},
		{name: "tab", in: "5\t", reason: `unexpected '\t'`},
		{name: "NUL", in: "5\x00", reason: `unexpected '\x00'`},
		{name: "arabic-indic digits", in: "\u0661\u0662\u0663\n", reason: "unexpected '\\xd9'"},
		{name: "fullwidth digits", in: "\uff11\uff12\n", reason: "unexpected"},
		{name: "32-bit -1", in: "4294967295\n", reason: "out of range"},
		{name: "int32 overflow", in: "2147483648\n", reason: "out of range"},
		{name: "20 digits", in: "99999999999999999999\n", reason: "20 digits"},
		{name: "11 digits", in: "12345678901", reason: "11 digits"},
		{name: "pid_max", in: strconv.Itoa(max) + "\n", reason: "out of range"},
		{name: "beyond PID_MAX_LIMIT", in: strconv.Itoa(proc.DefaultPIDMax) + "\n", reason: "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if tt.reason == "" {
				if err != nil || got != tt.want {
					t.Fatalf("Parse(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse(%q) = %d, want error %q", tt.in, got, tt.reason)
			}
			if got != 0 {
				t.Errorf("Parse(%q) returned %d with its error", tt.in, got)
			}
			var me *MalformedError
			if !errors.As(err, &me) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%q) error %T %v, want *MalformedError matching ErrMalformed", tt.in, err, err)
			}
			if me.Path != "" || me.Content != strconv.Quote(tt.in) {
				t.Errorf("error Path %q Content %s, want \"\" and %q", me.Path, me.Content, tt.in)
			}
			if !strings.Contains(me.Reason, tt.reason) {
				t.Errorf("Parse(%q) reason %q, want it to contain %q", tt.in, me.Reason, tt.reason)
			}
			// The shared parser in internal/proc must agree.
			if n, err := proc.ParsePID(strings.TrimSuffix(tt.in, "\n")); err == nil {
				t.Errorf("proc.ParsePID(%q) = %d, but Parse refuses it", tt.in, n)
			}
		})
	}
}

func TestMalformedContentTruncated(t *testing.T) {
	in := strings.Repeat("7", 100)
	_, err := Parse([]byte(in))
	var me *MalformedError
	if !errors.As(err, &me) {
		t.Fatalf("Parse(100 digits) = %v", err)
	}
	if want := strconv.Quote(in[:32]) + "..."; me.Content != want {
		t.Errorf("Content = %s, want %s", me.Content, want)
	}
}
