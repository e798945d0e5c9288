package tests

// guard's own lines: journald's <N> priorities when stderr is the journal
// ($JOURNAL_STREAM names it), none otherwise; --log-format json.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// runLogged runs guard with stderr on a file and env added, and returns the
// exit code, the stderr lines and guard's PID.
func runLogged(t *testing.T, stderr *os.File, env []string, args ...string) (int, []string, int) {
	t.Helper()
	cmd := exec.Command(guardBin, args...)
	cmd.Env = append(os.Environ(), append([]string{"NOTIFY_SOCKET=", "JOURNAL_STREAM="}, env...)...)
	cmd.Stderr = stderr
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	b, err := os.ReadFile(stderr.Name())
	if err != nil {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), strings.Split(strings.TrimSpace(string(b)), "\n"), cmd.Process.Pid
}

// journalStream returns a file and the JOURNAL_STREAM value naming it.
func journalStream(t *testing.T, name string) (*os.File, string) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return f, fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// A job that is sent a SIGHUP (a warning line) and exits 3 (the error line).
var hupThenFail = []string{"sh", "-c", `trap '' HUP; kill -HUP $PPID; sleep 0.3; exit 3`}

func TestLogJournalPriorities(t *testing.T) {
	lock := filepath.Join(lockDir(t), "job.lock")
	args := append([]string{"run", "--lock", lock, "--"}, hupThenFail...)

	f, stream := journalStream(t, "journal")
	code, lines, _ := runLogged(t, f, []string{"JOURNAL_STREAM=" + stream}, args...)
	if code != 3 {
		t.Fatalf("exit %d: %q", code, lines)
	}
	want := []string{"<4>" + lock + ": SIGHUP forwarded to the job (reload 1)",
		"<3>" + lock + ": job PID "}
	if len(lines) != 2 || lines[0] != want[0] || !strings.HasPrefix(lines[1], want[1]) {
		t.Fatalf("journal lines %q; want %q", lines, want)
	}

	// JOURNAL_STREAM naming another file: stderr is not the journal.
	g, _ := journalStream(t, "plain")
	code, lines, _ = runLogged(t, g, []string{"JOURNAL_STREAM=" + stream}, args...)
	if code != 3 || len(lines) != 2 || lines[0] != "guard: "+strings.TrimPrefix(want[0], "<4>") || !strings.HasPrefix(lines[1], "guard: ") {
		t.Fatalf("exit %d, plain lines %q; want no <N> prefix", code, lines)
	}
}

// --log-format json: one JSON object a line, with time, level, msg, name,
// pid, and the token once the lock is held; <N> in front under journald.
func TestLogFormatJSON(t *testing.T) {
	dir := lockDir(t)
	lock := filepath.Join(dir, "job.lock")
	args := append([]string{"run", "--log-format", "json", "--name", "nightly", "--lock", lock, "--"}, hupThenFail...)
	for _, journal := range []bool{false, true} {
		t.Run(fmt.Sprintf("journal=%v", journal), func(t *testing.T) {
			f, stream := journalStream(t, "stderr")
			var env []string
			if journal {
				env = []string{"JOURNAL_STREAM=" + stream}
			}
			code, lines, pid := runLogged(t, f, env, args...)
			if code != 3 || len(lines) != 2 {
				t.Fatalf("exit %d, lines %q", code, lines)
			}
			for i, l := range lines {
				prefix := map[bool]string{false: "", true: []string{"<4>", "<3>"}[i]}[journal]
				if !strings.HasPrefix(l, prefix+"{") {
					t.Fatalf("line %q does not start with %q", l, prefix+"{")
				}
				var m map[string]any
				if err := json.Unmarshal([]byte(strings.TrimPrefix(l, prefix)), &m); err != nil {
					t.Fatalf("line %q: %v", l, err)
				}
				if m["level"] != []string{"WARN", "ERROR"}[i] || m["name"] != "nightly" || m["pid"] != float64(pid) ||
					m["time"] == nil || m["token"] == nil || m["msg"] == nil {
					t.Errorf("line %d: %v; want level, time, msg, name nightly, pid %d and token", i, m, pid)
				}
			}
		})
	}
	// Before the lock is held there is no token yet.
	h := holdLock(t, lock)
	defer h.cmd.Process.Kill()
	f, _ := journalStream(t, "busy")
	code, lines, _ := runLogged(t, f, nil, "run", "--log-format", "json", "--name", "nightly", "--lock", lock, "--", "true")
	var m map[string]any
	if code != 75 || len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &m) != nil || m["level"] != "ERROR" ||
		!strings.Contains(fmt.Sprint(m["msg"]), "busy") || m["token"] != nil {
		t.Fatalf("busy: exit %d, %q", code, lines)
	}
}
