package daemon

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DefaultSyslogSocket is the local syslog socket, served by rsyslog, syslog-ng or
// journald.
const DefaultSyslogSocket = "/dev/log"

// facilityDaemon is LOG_DAEMON, the facility of system daemons.
const facilityDaemon = 3

// SyslogHandler is a slog handler that sends each record as one datagram to the local
// syslog socket, formatted as openlog(3)/syslog(3) do (RFC 3164 style):
//
//	<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG
//
// with facility daemon, PRI = 3*8 + SeverityOf(level), the record's local time, and MSG
// the record as slog text without its time. Handlers derived from it share the socket.
type SyslogHandler struct {
	lineHandler
	addr string
	tag  string
	conn net.Conn // guarded by lineHandler.out.mu; nil after a failure or Close
}

// NewSyslogHandler connects to the unixgram syslog socket at addr ("" means
// DefaultSyslogSocket) and returns a handler that tags records with tag ("" means the
// program's base name) and its PID. If sending fails (syslogd restarted), the handler
// reconnects and retries once; a record that still cannot be sent is dropped and its
// error returned from Handle. Only datagram sockets are supported.
func NewSyslogHandler(addr, tag string, opts *slog.HandlerOptions) (*SyslogHandler, error) {
	if addr == "" {
		addr = DefaultSyslogSocket
	}
	if tag == "" {
		tag = filepath.Base(os.Args[0])
	}
	h := &SyslogHandler{addr: addr, tag: tag}
	conn, err := h.dial()
	if err != nil {
		return nil, err
	}
	h.conn = conn
	h.lineHandler = newLineHandler(opts, true, h.send)
	return h, nil
}

func (h *SyslogHandler) dial() (net.Conn, error) {
	c, err := net.Dial("unixgram", h.addr)
	if err != nil {
		return nil, fmt.Errorf("syslog: %w", err)
	}
	return c, nil
}

// send formats and writes one record; called with out.mu held.
func (h *SyslogHandler) send(r *slog.Record, line []byte) error {
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "<%d>%s %s[%d]: ", facilityDaemon*8+int(SeverityOf(r.Level)), t.Format(time.Stamp), h.tag, os.Getpid())
	b.Write(bytes.TrimRight(line, "\n"))
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		if h.conn == nil {
			if h.conn, err = h.dial(); err != nil {
				continue
			}
		}
		if _, err = h.conn.Write(b.Bytes()); err == nil {
			return nil
		}
		h.conn.Close()
		h.conn = nil
		err = fmt.Errorf("syslog: %w", err)
	}
	return err
}

// Close closes the socket. Records handled afterwards reconnect. Close is idempotent.
func (h *SyslogHandler) Close() error {
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	if h.conn == nil {
		return nil
	}
	err := h.conn.Close()
	h.conn = nil
	return err
}
