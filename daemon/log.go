package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
)

// Severity is a syslog severity (RFC 5424 section 6.2.1), as journald's "<N>" prefixes
// and syslog's PRI use it.
type Severity int

// The severities slog levels map to.
const (
	SevErr     Severity = 3
	SevWarning Severity = 4
	SevNotice  Severity = 5
	SevInfo    Severity = 6
	SevDebug   Severity = 7
)

// SeverityOf maps a slog level to a syslog severity: Error and above -> err (3), Warn and
// above -> warning (4), above Info -> notice (5), Info -> info (6), below -> debug (7).
func SeverityOf(l slog.Level) Severity {
	switch {
	case l >= slog.LevelError:
		return SevErr
	case l >= slog.LevelWarn:
		return SevWarning
	case l > slog.LevelInfo:
		return SevNotice
	case l == slog.LevelInfo:
		return SevInfo
	}
	return SevDebug
}

// NewStderrHandler returns a text handler writing to stderr. When journald reads stderr
// ($JOURNAL_STREAM names stderr's device and inode, see systemd.exec(5)) each line starts
// with a "<N>" severity prefix (sd-daemon(3)) and carries no time (the journal stamps
// it); otherwise lines are plain slog text with the time.
func NewStderrHandler(opts *slog.HandlerOptions) slog.Handler {
	return newStreamHandler(os.Stderr, opts)
}

func newStreamHandler(f *os.File, opts *slog.HandlerOptions) slog.Handler {
	if !isJournalStream(f) {
		return slog.NewTextHandler(f, opts)
	}
	return newFormatStream(f, textFormat, opts, true)
}

// isJournalStream reports whether f is the stream $JOURNAL_STREAM ("DEV:INO") names.
func isJournalStream(f *os.File) bool {
	v := os.Getenv("JOURNAL_STREAM")
	if v == "" {
		return false
	}
	var dev, ino uint64
	if n, err := fmt.Sscanf(v, "%d:%d", &dev, &ino); n != 2 || err != nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && uint64(st.Dev) == dev && uint64(st.Ino) == ino
}

// lineHandler formats each record as one slog text line into a shared buffer and hands
// it, with the record, to emit. Handlers derived by WithAttrs and WithGroup share
// the buffer and emit (and the lock that serializes them).
type lineHandler struct {
	inner slog.Handler
	out   *lineOut
}

type lineOut struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	emit func(r *slog.Record, line []byte) error
}

// newLineHandler builds a lineHandler; noTime drops the time attribute (for sinks that
// stamp records themselves).
func newLineHandler(opts *slog.HandlerOptions, noTime bool, emit func(r *slog.Record, line []byte) error) lineHandler {
	return newFormatHandler(textFormat, opts, noTime, emit)
}

// textFormat builds slog's text handler, the lineHandler's default format.
func textFormat(w io.Writer, o *slog.HandlerOptions) slog.Handler { return slog.NewTextHandler(w, o) }

// newFormatHandler is newLineHandler with the format mk builds (text, JSON, message).
func newFormatHandler(mk func(io.Writer, *slog.HandlerOptions) slog.Handler, opts *slog.HandlerOptions, noTime bool, emit func(r *slog.Record, line []byte) error) lineHandler {
	out := &lineOut{emit: emit}
	var o slog.HandlerOptions
	if opts != nil {
		o = *opts
	}
	if noTime {
		replace := o.ReplaceAttr
		o.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			if replace != nil {
				return replace(groups, a)
			}
			return a
		}
	}
	return lineHandler{inner: mk(&out.buf, &o), out: out}
}

// Enabled reports whether records at level l are handled (HandlerOptions.Level).
func (h lineHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

// Handle formats r as one text line and writes it; the write's error is returned.
func (h lineHandler) Handle(ctx context.Context, r slog.Record) error {
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	h.out.buf.Reset()
	if err := h.inner.Handle(ctx, r); err != nil {
		return err
	}
	return h.out.emit(&r, h.out.buf.Bytes())
}

// WithAttrs returns a handler that adds as to every record and shares h's output.
func (h lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return lineHandler{inner: h.inner.WithAttrs(as), out: h.out}
}

// WithGroup returns a handler that qualifies later attributes with name and shares h's
// output.
func (h lineHandler) WithGroup(name string) slog.Handler {
	return lineHandler{inner: h.inner.WithGroup(name), out: h.out}
}

// FileHandler is a slog text handler appending to a log file that can be reopened after
// logrotate renamed it. Handlers derived from it share the file.
type FileHandler struct {
	lineHandler
	path string
	f    *os.File // guarded by lineHandler.out.mu
}

// NewFileHandler opens path for appending (created with mode 0640, less the umask, if
// missing) and returns a handler writing one text line per record to it.
func NewFileHandler(path string, opts *slog.HandlerOptions) (*FileHandler, error) {
	f, err := openLogFile(path)
	if err != nil {
		return nil, err
	}
	h := &FileHandler{path: path, f: f}
	h.lineHandler = newLineHandler(opts, false, func(_ *slog.Record, line []byte) error {
		if h.f == nil {
			return fmt.Errorf("log file %q: %w", h.path, os.ErrClosed)
		}
		_, err := h.f.Write(line)
		return err
	})
	return h, nil
}

func openLogFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
}

// Reopen opens the path again and switches to the new file, closing the old one: call it
// on SIGUSR1 after logrotate renamed the file. On error the old file stays in use. After
// Close it reopens the file too.
func (h *FileHandler) Reopen() error {
	f, err := openLogFile(h.path)
	if err != nil {
		return err
	}
	h.out.mu.Lock()
	old := h.f
	h.f = f
	h.out.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Close closes the file; records handled afterwards fail with os.ErrClosed. It never
// removes the file. Close is idempotent.
func (h *FileHandler) Close() error {
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	if h.f == nil {
		return nil
	}
	err := h.f.Close()
	h.f = nil
	return err
}
