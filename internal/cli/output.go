package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/guardkit/guard/daemon"
)

// logger sends guard's own lines: through the daemon kit's handlers to
// stderr (plain "guard: message" lines or JSON objects, with journald's
// "<N>" priority prefix when stderr is the journal), or to syslog once a
// detached run writes there.
type logger struct {
	mu     sync.Mutex
	stderr *slog.Logger // the logger of stderr lines now
	base   *slog.Logger // JSON: the logger without the token
	json   bool
	sink   *slog.Logger // syslog, with --detach --output syslog
}

func newLogger() *logger {
	return &logger{stderr: slog.New(daemon.NewStderrMessageHandler("guard: ", nil))}
}

// printf logs one diagnostic line (at warning: guard's routine lines are
// worth a look, never noise).
func (l *logger) printf(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	l.mu.Lock()
	lg := l.stderr
	if l.sink != nil {
		lg = l.sink
	}
	l.mu.Unlock()
	lg.Warn(msg)
}

// error logs the one line of a command that failed.
func (l *logger) error(msg string) {
	l.mu.Lock()
	lg := l.stderr
	l.mu.Unlock()
	lg.Error(msg)
}

// setFormat switches the stderr lines to format (text or json).
func (l *logger) setFormat(format string) {
	if format != "json" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.json = true
	l.base = slog.New(daemon.NewStderrJSONHandler(nil)).With("pid", os.Getpid())
	l.stderr = l.base
}

// setName adds the job's name to JSON lines; text lines carry the lock's
// path in their words already.
func (l *logger) setName(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.json {
		l.base = l.base.With("name", name)
		l.stderr = l.base
	}
}

// setToken sets the token of JSON lines: the lease's, from the moment the
// lock is held (again).
func (l *logger) setToken(token uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.json {
		l.stderr = l.base.With("token", token)
	}
}

// logf logs one of guard's diagnostic lines.
func (c *CLI) logf(format string, a ...any) { c.log.printf(format, a...) }

// toSyslog connects to syslog, sends guard's messages there from now on,
// and returns a writer whose lines are logged with tag, for the job's
// stdout and stderr, and a channel closed once every line has been sent:
// when the last copy of the writer (the job's and its children's) is closed.
// GUARD_SYSLOG_SOCKET names another socket than /dev/log (tests, chroots).
func (c *CLI) toSyslog(tag string) (io.WriteCloser, <-chan struct{}, error) {
	h, err := daemon.NewSyslogHandler(c.getenv("GUARD_SYSLOG_SOCKET"), tag, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("--output syslog: %w", err)
	}
	logger := slog.New(h)
	c.log.mu.Lock()
	c.log.sink = logger
	c.log.mu.Unlock()
	pr, pw, err := os.Pipe()
	if err != nil {
		h.Close()
		return nil, nil, err
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			logger.LogAttrs(context.Background(), slog.LevelInfo, sc.Text())
		}
	}()
	return pw, drained, nil
}
