package cli

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"testing"

	"github.com/guardkit/guard/instance"
	"github.com/guardkit/guard/internal/safepath"
	"github.com/guardkit/guard/job"
	"github.com/guardkit/guard/pidfile"
)

func TestCodeOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"explicit", exitf(42, "x"), 42},
		{"silent", silent(3), 3},
		{"usage", usagef("bad"), exitUsage},
		{"help", flag.ErrHelp, exitUsage},
		{"busy", &instance.HeldError{Path: "/l"}, exitBusy},
		{"unsafe lock", &instance.UnsafeError{Path: "/l", Reason: "r"}, exitUnsafe},
		{"unsafe path", fmt.Errorf("lock directory: %w", &safepath.UnsafeError{Path: "/d", Reason: "r"}), exitUnsafe},
		{"unsafe pidfile", pidfile.ErrUnsafe, exitUnsafe},
		{"malformed pidfile", pidfile.ErrMalformed, exitUnsafe},
		{"permission", &os.PathError{Op: "open", Path: "/l", Err: fs.ErrPermission}, exitPerm},
		{"EPERM", syscall.EPERM, exitPerm},
		{"read-only", &os.PathError{Op: "open", Path: "/l", Err: syscall.EROFS}, exitCantCreate},
		{"missing dir", &os.PathError{Op: "open", Path: "/l", Err: syscall.ENOENT}, exitCantCreate},
		{"disk full", syscall.ENOSPC, exitCantCreate},
		{"anything else", errors.New("boom"), exitInternal},
	}
	for _, tt := range tests {
		if got := codeOf(tt.err); got != tt.want {
			t.Errorf("%s: codeOf(%v) = %d, want %d", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"backup": true, "db-1.nightly": true, "x@y_z": true, "A9": true,
		"": false, ".hidden": false, "-flag": false, "a/b": false, "a b": false, "ü": false,
		string(make([]byte, 129)): false,
	} {
		if got := validName(name); got != want {
			t.Errorf("validName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestCheckListen(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:9101": true, ":0": true, "[::1]:80": true, "localhost:65535": true,
		"bad": false, "127.0.0.1:http": false, "127.0.0.1:70000": false, "127.0.0.1:-1": false, "": false,
	} {
		if err := checkListen(addr); (err == nil) != ok {
			t.Errorf("checkListen(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}

func TestModeFlag(t *testing.T) {
	for in, want := range map[string]os.FileMode{"0600": 0o600, "600": 0o600, "0640": 0o640, "0644": 0o644} {
		var m os.FileMode
		if err := (modeFlag{&m}).Set(in); err != nil || m != want {
			t.Errorf("--lock-mode %s: %v, %v; want %04o", in, m, err, want)
		}
	}
	for _, in := range []string{"0666", "0620", "0400", "0200", "1777", "rw", "0x600", "-1"} {
		var m os.FileMode
		if err := (modeFlag{&m}).Set(in); err == nil {
			t.Errorf("--lock-mode %s accepted as %04o", in, m)
		}
	}
}

func TestPolicyFlag(t *testing.T) {
	var p job.Policy
	for in, want := range map[string]job.Policy{"kill": job.Kill, "wait": job.Wait, "ignore": job.Ignore} {
		if err := (policyFlag{&p}).Set(in); err != nil || p != want {
			t.Errorf("--leftovers %s: %v, %v", in, p, err)
		}
	}
	if err := (policyFlag{&p}).Set("keep"); err == nil {
		t.Error("--leftovers keep accepted")
	}
}

// Every flag error is a usage error (64) in one line naming the command.
func TestParseRunErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--name", "x"},
		{"--name", "x", "--conflict-exit", "300", "--", "true"},
		{"--name", "x", "--output", "/tmp/o", "--", "true"},
		{"--name", "../x", "--", "true"},
		{"--name", "x", "--listen", "nope", "--", "true"},
		{"--name", "x", "--leftovers", "keep", "--", "true"},
		{"--name", "x", "--lock-mode", "0666", "--", "true"},
		{"--name", "x", "--wait", "soon", "--", "true"},
		{"--name", "x", "--kill-after", "-1s", "--", "true"},
		{"--name", "x", "--no-such-flag", "--", "true"},
	} {
		_, _, err := New(Config{}).parseRun(args)
		if codeOf(err) != exitUsage {
			t.Errorf("parseRun(%q) = %v (exit %d), want a usage error", args, err, codeOf(err))
		}
	}
}

// stop --force breaks only locks kept in etcd: on a local lock it is a
// usage error, and nothing is looked at or signalled.
func TestStopForceIsForEtcd(t *testing.T) {
	if code := codeOf(New(Config{}).stopCmd([]string{"--force", "--lock", t.TempDir() + "/x.lock"})); code != exitUsage {
		t.Fatalf("stop --force on a file lock: exit %d, want %d", code, exitUsage)
	}
}
