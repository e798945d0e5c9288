package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// NewStderrJSONHandler returns a JSON handler writing one object per line to stderr
// (slog's JSON: time, level, msg and the attributes). When journald reads stderr
// ($JOURNAL_STREAM names it) each line also starts with a "<N>" severity prefix, which
// journald strips; the time stays in the object.
func NewStderrJSONHandler(opts *slog.HandlerOptions) slog.Handler {
	return newFormatStream(os.Stderr, jsonFormat, opts, false)
}

// NewStderrMessageHandler returns a handler for a command-line tool's own lines on stderr:
// prefix, the message, then the attributes as key=value, with no time or level, as users
// of such tools read them ("guard: /run/guard/x.lock: busy"). When journald reads stderr
// each line starts with a "<N>" severity prefix instead of prefix (the journal names the
// program already), so errors land in the journal as errors.
func NewStderrMessageHandler(prefix string, opts *slog.HandlerOptions) slog.Handler {
	if isJournalStream(os.Stderr) {
		prefix = ""
	}
	mk := func(w io.Writer, o *slog.HandlerOptions) slog.Handler {
		return &messageHandler{w: w, prefix: prefix, level: o.Level}
	}
	return newFormatStream(os.Stderr, mk, opts, false)
}

func jsonFormat(w io.Writer, o *slog.HandlerOptions) slog.Handler { return slog.NewJSONHandler(w, o) }

// newFormatStream writes mk's lines to f, with a "<N>" prefix when f is the journal.
func newFormatStream(f *os.File, mk func(io.Writer, *slog.HandlerOptions) slog.Handler, opts *slog.HandlerOptions, noTime bool) slog.Handler {
	journal := isJournalStream(f)
	return newFormatHandler(mk, opts, noTime, func(r *slog.Record, line []byte) error {
		if journal {
			_, err := fmt.Fprintf(f, "<%d>%s", SeverityOf(r.Level), line)
			return err
		}
		_, err := f.Write(line)
		return err
	})
}

// messageHandler formats "prefix message key=value ..." lines.
type messageHandler struct {
	w      io.Writer
	prefix string
	level  slog.Leveler
	attrs  string // preformatted " key=value" pairs from WithAttrs
	group  string // "a.b." from WithGroup
}

func (h *messageHandler) Enabled(_ context.Context, l slog.Level) bool {
	min := slog.LevelInfo
	if h.level != nil {
		min = h.level.Level()
	}
	return l >= min
}

func (h *messageHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(h.prefix)
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.group, a)
		return true
	})
	b.WriteByte('\n')
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *messageHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	var b strings.Builder
	for _, a := range as {
		appendAttr(&b, h.group, a)
	}
	c.attrs += b.String()
	return &c
}

func (h *messageHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.group += name + "."
	return &c
}

// appendAttr writes " key=value", groups flattened into dotted keys, values quoted when
// they hold spaces, quotes or line breaks.
func appendAttr(b *strings.Builder, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		g := group
		if a.Key != "" {
			g += a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			appendAttr(b, g, ga)
		}
		return
	}
	v := a.Value.String()
	if v == "" || strings.ContainsAny(v, " \"=\n\r\t") {
		v = fmt.Sprintf("%q", v)
	}
	fmt.Fprintf(b, " %s%s=%s", group, a.Key, v)
}
