package instance

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"time"

	"github.com/guardkit/guard/internal/proc"
)

// MaxRecord is the largest record guard writes or reads. Keeping the record
// within one page makes its single write all-or-nothing for SIGKILL.
const MaxRecord = 4096

// maxCommand bounds the command line kept in a record.
const maxCommand = 2048

// Record is what a holder writes into the lock file.
type Record struct {
	PID        int       // 0 in a released record
	StartTicks uint64    // holder's start time, clock ticks since boot
	BootID     string    // kernel boot id at acquisition
	PIDNS      uint64    // inode of the holder's PID namespace
	Host       string    // host name
	Acquired   time.Time // when the lock was taken
	Name       string    // job name
	Command    string    // command line, each word quoted
	Token      uint64    // fencing token
	Released   time.Time // set when the holder released the lock cleanly
	LastPID    int       // in a released record: the PID that held it
	// LastSuccess is when a job run under this lock last succeeded (zero if
	// never): carried from record to record, for guard run --min-interval.
	LastSuccess time.Time
}

// errPartial reports a record that is empty, cut short or torn: it is being
// written (if the lock is held) or the writer died while writing.
var errPartial = errors.New("record incomplete")

// Marshal renders r in the on-disk format, at most MaxRecord bytes.
func (r *Record) Marshal() []byte {
	var b bytes.Buffer
	if r.PID > 0 {
		b.WriteString(strconv.Itoa(r.PID))
	}
	b.WriteByte('\n')
	kv := func(k, v string) { b.WriteString(k + "=" + v + "\n") }
	kv("start", strconv.FormatUint(r.StartTicks, 10))
	kv("boot", oneLine(r.BootID))
	kv("pidns", strconv.FormatUint(r.PIDNS, 10))
	kv("host", oneLine(r.Host))
	kv("acquired", r.Acquired.UTC().Format(time.RFC3339Nano))
	kv("name", oneLine(r.Name))
	cmd := oneLine(r.Command)
	if len(cmd) > maxCommand {
		cmd = cmd[:maxCommand] + "..."
	}
	kv("cmd", cmd)
	kv("token", strconv.FormatUint(r.Token, 10))
	if !r.Released.IsZero() {
		kv("released", r.Released.UTC().Format(time.RFC3339Nano))
		kv("last_pid", strconv.Itoa(r.LastPID))
	}
	if !r.LastSuccess.IsZero() {
		kv("last_success", r.LastSuccess.UTC().Format(time.RFC3339Nano))
	}
	fmt.Fprintf(&b, "sum=%08x\n", crc32.ChecksumIEEE(b.Bytes()))
	return b.Bytes()
}

// oneLine keeps a value on its line: newlines and other control bytes are
// replaced, so no value can forge another key.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// ParseRecord parses a record. It returns an error matching errPartial when
// b is empty or the checksum line is missing or wrong (a torn or unfinished
// write), and another error when a complete record is malformed. Bytes after
// the checksum line are ignored: they are the tail of a longer, older record.
func ParseRecord(b []byte) (*Record, error) {
	end := bytes.Index(b, []byte("\nsum="))
	if len(b) == 0 || end < 0 {
		return nil, errPartial
	}
	body := b[:end+1]
	rest := b[end+len("\nsum="):]
	nl := bytes.IndexByte(rest, '\n')
	if nl != 8 {
		return nil, errPartial
	}
	want, err := strconv.ParseUint(string(rest[:8]), 16, 32)
	if err != nil || uint32(want) != crc32.ChecksumIEEE(body) {
		return nil, errPartial
	}
	return parseBody(body)
}

func parseBody(body []byte) (*Record, error) {
	r := &Record{}
	line, rest, _ := bytes.Cut(body, []byte("\n"))
	if string(line) == "1" {
		// PID 1 holds locks legitimately (guard as a container's
		// entrypoint); nothing ever signals it (proc.Open refuses it).
		r.PID = 1
	} else if len(line) > 0 {
		pid, err := proc.ParsePID(string(line))
		if err != nil {
			return nil, fmt.Errorf("record: PID line: %w", err)
		}
		r.PID = pid
	}
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		k, v, ok := strings.Cut(string(line), "=")
		if !ok {
			return nil, fmt.Errorf("record: line %q is not key=value", line)
		}
		if err := r.set(k, v); err != nil {
			return nil, fmt.Errorf("record: %s: %w", k, err)
		}
	}
	if r.PID == 0 && r.Released.IsZero() {
		return nil, errors.New("record: no PID and not released")
	}
	return r, nil
}

func (r *Record) set(k, v string) error {
	var err error
	switch k {
	case "start":
		r.StartTicks, err = strconv.ParseUint(v, 10, 64)
	case "boot":
		r.BootID = v
	case "pidns":
		r.PIDNS, err = strconv.ParseUint(v, 10, 64)
	case "host":
		r.Host = v
	case "acquired":
		r.Acquired, err = time.Parse(time.RFC3339Nano, v)
	case "name":
		r.Name = v
	case "cmd":
		r.Command = v
	case "token":
		r.Token, err = strconv.ParseUint(v, 10, 64)
	case "released":
		r.Released, err = time.Parse(time.RFC3339Nano, v)
	case "last_pid":
		r.LastPID, err = strconv.Atoi(v)
	case "last_success":
		r.LastSuccess, err = parseLastSuccess(v)
	}
	// Unknown keys are kept for forward compatibility and ignored.
	return err
}

// QuoteCommand renders argv for the record's cmd= line.
func QuoteCommand(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = strconv.Quote(a)
	}
	return strings.Join(q, " ")
}

// maxToken is the largest fencing token: tokens stay within int64, so
// every consumer (JSON, Prometheus, SQL) can hold them.
const maxToken = 1<<63 - 1

// nextToken returns the fencing token for a new acquisition: the larger of
// prev+1 and the time in microseconds since the Unix epoch. It refuses a
// prev at or beyond maxToken (a hostile or corrupt record) rather than let
// tokens go back.
func nextToken(prev uint64, now time.Time) (uint64, error) {
	if prev >= maxToken {
		return 0, fmt.Errorf("the record's fencing token %d is at its limit (%d): tokens cannot increase; remove the lock file only once you are sure no job of this lock runs", prev, uint64(maxToken))
	}
	if t := uint64(now.UnixMicro()); t > prev+1 {
		return t, nil
	}
	return prev + 1, nil
}

// looksLikeRecord reports whether b, which failed to parse, is empty or the
// beginning of a guard record (a PID line, then key=value lines, the last
// possibly cut short), as a holder killed mid-write leaves it. Anything
// else is some other program's file, which guard must not overwrite.
func looksLikeRecord(b []byte) bool {
	lines := strings.Split(string(b), "\n")
	for i, line := range lines {
		last := i == len(lines)-1
		switch {
		case i == 0:
			if len(line) > 10 || strings.Trim(line, "0123456789") != "" {
				return false
			}
		case last && line == "":
		default:
			k, _, ok := strings.Cut(line, "=")
			if (!ok && !last) || k == "" || strings.Trim(k, "abcdefghijklmnopqrstuvwxyz_") != "" {
				return false
			}
		}
	}
	return true
}

// parseLastSuccess parses a last_success value strictly: RFC 3339 in UTC
// ("Z"), after 2000 and before 9999, as Marshal writes it. The record may
// have been written by another user: anything else makes the record
// malformed rather than a time that suppresses runs.
func parseLastSuccess(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, err
	}
	if !strings.HasSuffix(v, "Z") || t.Year() < 2000 || t.Year() >= 9999 {
		return time.Time{}, fmt.Errorf("%q: want a UTC time (RFC 3339, Z) between 2000 and 9999", v)
	}
	return t, nil
}
