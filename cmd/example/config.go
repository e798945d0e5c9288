package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
)

// defaultConfig is the configuration used without --config, and the base a
// file's settings override. It doubles as a sample of the file format:
// "key = value" lines, blank lines, and comment lines starting with '#'.
const defaultConfig = `# example's built-in configuration
message = hello from example
interval = 1s
`

// config is one complete, valid configuration. It is never changed after
// parsing: a reload swaps in a new one.
type config struct {
	Message  string        // logged every Interval
	Interval time.Duration // > 0
}

// errConfig is matched by every configuration error (exit code 78, EX_CONFIG).
var errConfig = errors.New("invalid configuration")

// configError names the file and line at fault.
type configError struct {
	File string
	Line int // 0 when the file as a whole is at fault
	Msg  string
}

func (e *configError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("config %s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("config %s:%d: %s", e.File, e.Line, e.Msg)
}

func (e *configError) Is(target error) bool { return target == errConfig }

// loadConfig reads the configuration file at path over the defaults; an empty
// path means the defaults alone. Any error leaves nothing half-applied: the
// caller keeps whatever configuration it had.
func loadConfig(path string) (*config, error) {
	c, err := parseConfig("(built-in)", defaultConfig, config{})
	if err != nil {
		panic(err) // a broken defaultConfig is a programming error
	}
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		msg := err.Error()
		if pe, ok := errors.AsType[*fs.PathError](err); ok {
			msg = pe.Op + ": " + pe.Err.Error() // the path is in configError already
		}
		return nil, &configError{File: path, Msg: msg}
	}
	return parseConfig(path, string(b), *c)
}

// parseConfig parses text (named file in errors) over base. Unknown or
// repeated keys, lines without '=', bad durations and intervals <= 0 are
// errors.
func parseConfig(file, text string, base config) (*config, error) {
	c := base
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		bad := func(format string, a ...any) error {
			return &configError{File: file, Line: n, Msg: fmt.Sprintf(format, a...)}
		}
		key, value, ok := strings.Cut(line, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch {
		case !ok:
			return nil, bad("want \"key = value\", got %q", line)
		case seen[key]:
			return nil, bad("%q set twice", key)
		}
		seen[key] = true
		switch key {
		case "message":
			if value == "" {
				return nil, bad("message is empty")
			}
			c.Message = value
		case "interval":
			d, err := time.ParseDuration(value)
			if err != nil {
				return nil, bad("interval: %q is not a duration like 500ms or 1m", value)
			}
			if d <= 0 {
				return nil, bad("interval must be positive, got %s", value)
			}
			c.Interval = d
		default:
			return nil, bad("unknown key %q (known: message, interval)", key)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, &configError{File: file, Msg: err.Error()}
	}
	return &c, nil
}
