//go:build linux

package daemon

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeSyslog listens on a real unixgram socket standing in for /dev/log.
func fakeSyslog(t *testing.T, path string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestSyslogHandlerFormatAndPriority(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	conn := fakeSyslog(t, path)
	h, err := NewSyslogHandler(path, "guardtest", &slog.HandlerOptions{Level: slog.LevelDebug})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	log := slog.New(h).With("job", "backup")
	line := regexp.MustCompile(`^<([0-9]+)>([A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}) guardtest\[` +
		strconv.Itoa(os.Getpid()) + `\]: (.*)$`)
	tests := []struct {
		level   slog.Level
		pri     int
		message string
	}{
		{slog.LevelDebug, 31, `level=DEBUG msg="debug message" job=backup n=1`},
		{slog.LevelInfo, 30, `level=INFO msg="info message" job=backup n=1`},
		{slog.LevelWarn, 28, `level=WARN msg="warn message" job=backup n=1`},
		{slog.LevelError, 27, `level=ERROR msg="error message" job=backup n=1`},
	}
	for _, tt := range tests {
		log.Log(t.Context(), tt.level, strings.ToLower(tt.level.String())+" message", "n", 1)
		got := readDatagram(t, conn)
		m := line.FindStringSubmatch(got)
		if m == nil {
			t.Errorf("%v: %q is not <PRI>Mmm dd hh:mm:ss TAG[PID]: MSG", tt.level, got)
			continue
		}
		if m[1] != strconv.Itoa(tt.pri) || m[3] != tt.message {
			t.Errorf("%v: PRI %s, MSG %q; want %d, %q", tt.level, m[1], m[3], tt.pri, tt.message)
		}
		if _, err := time.Parse(time.Stamp, m[2]); err != nil {
			t.Errorf("timestamp %q: %v", m[2], err)
		}
	}
}

func TestSyslogHandlerReconnects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	conn := fakeSyslog(t, path)
	h, err := NewSyslogHandler(path, "guardtest", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	log := slog.New(h)
	log.Info("before restart")
	readDatagram(t, conn)
	conn.Close() // syslogd restarts: a new socket at the same path
	os.Remove(path)
	conn = fakeSyslog(t, path)
	log.Info("after restart")
	if got := readDatagram(t, conn); !strings.HasSuffix(got, `msg="after restart"`) {
		t.Errorf("after reconnect got %q", got)
	}
}

func TestFileHandlerReopenAfterRename(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.log")
	h, err := NewFileHandler(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	log := slog.New(h).With("k", "v")
	log.Info("first")
	if err := os.Rename(path, path+".1"); err != nil { // logrotate
		t.Fatal(err)
	}
	log.Info("second") // still to the renamed file
	if err := h.Reopen(); err != nil {
		t.Fatal(err)
	}
	log.Info("third")
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !strings.Contains(string(old), "msg=first k=v\n") || !strings.Contains(string(old), "msg=second") || strings.Contains(string(old), "third") {
		t.Errorf("rotated file:\n%s", old)
	}
	if !strings.Contains(string(cur), "msg=third k=v\n") || strings.Count(string(cur), "\n") != 1 {
		t.Errorf("reopened file:\n%s", cur)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&^0o640 != 0 {
		t.Errorf("log file mode %v, want at most 0640", fi.Mode())
	}
	h.Close()
	if err := slog.New(h).Handler().Handle(t.Context(), slog.NewRecord(time.Now(), slog.LevelInfo, "x", 0)); err == nil {
		t.Error("Handle after Close: no error")
	}
}

func TestStderrHandlerJournalPrefix(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	log := slog.New(newStreamHandler(f, nil))
	log.Info("hello", "a", 1)
	log.Error("bad")
	b, _ := os.ReadFile(f.Name())
	if want := "<6>level=INFO msg=hello a=1\n<3>level=ERROR msg=bad\n"; string(b) != want {
		t.Errorf("under journald got %q, want %q", b, want)
	}

	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino+1)) // someone else's stream
	f.Truncate(0)
	f.Seek(0, 0)
	slog.New(newStreamHandler(f, nil)).Info("plain")
	b, _ = os.ReadFile(f.Name())
	if !strings.HasPrefix(string(b), "time=") {
		t.Errorf("without journald got %q, want a plain line with time", b)
	}
}

func TestSeverityOf(t *testing.T) {
	for level, want := range map[slog.Level]Severity{
		slog.LevelDebug - 4: SevDebug, slog.LevelDebug: SevDebug, slog.LevelInfo: SevInfo,
		slog.LevelInfo + 2: SevNotice, slog.LevelWarn: SevWarning, slog.LevelError: SevErr, slog.LevelError + 8: SevErr,
	} {
		if got := SeverityOf(level); got != want {
			t.Errorf("SeverityOf(%v) = %d, want %d", level, got, want)
		}
	}
}
