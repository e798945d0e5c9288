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

// syslogSocket is the syslog socket --output syslog writes to;
// GUARD_SYSLOG_SOCKET overrides /dev/log (tests, chroots).
func syslogSocket() string { return os.Getenv("GUARD_SYSLOG_SOCKET") }

// logMu guards logSink, where logf sends guard's own messages once a
// detached run writes to syslog.
var (
	logMu   sync.Mutex
	logSink *slog.Logger
)

// logf prints one diagnostic line on stderr, or to syslog with
// --detach --output syslog.
func logf(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	logMu.Lock()
	sink := logSink
	logMu.Unlock()
	if sink != nil {
		sink.Warn(msg)
		return
	}
	stderrLogger().Warn(msg)
}

// toSyslog connects to syslog, sends guard's messages there from now on,
// and returns a writer whose lines are logged with tag, for the job's
// stdout and stderr, and a channel closed once every line has been sent:
// when the last copy of the writer (the job's and its children's) is closed.
func toSyslog(tag string) (io.WriteCloser, <-chan struct{}, error) {
	h, err := daemon.NewSyslogHandler(syslogSocket(), tag, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("--output syslog: %w", err)
	}
	logger := slog.New(h)
	logMu.Lock()
	logSink = logger
	logMu.Unlock()
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
