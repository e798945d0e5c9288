package cli

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guardkit/guard/instance"
)

// inProcess runs a command line on a CLI whose stdout is a file of the
// test, and returns the exit code and what it printed there.
func inProcess(t *testing.T, cfg Config, env map[string]string, args ...string) (int, string) {
	t.Helper()
	out, err := os.CreateTemp(t.TempDir(), "stdout")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	c := New(cfg)
	c.stdout = out
	c.getenv = func(k string) string { return env[k] }
	code := c.Main(args)
	b, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	return code, string(b)
}

// The command line runs in-process on a CLI value: its output goes where
// the value says, its environment is the value's, and two CLIs with other
// configurations do not see each other's.
func TestCLIValue(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "locks") // made by the first command that needs it
	code, out := inProcess(t, Config{Version: "v9.8.7"}, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "guard v9.8.7 (") {
		t.Errorf("version: exit %d, %q", code, out)
	}
	code, out = inProcess(t, Config{}, map[string]string{"GUARD_DIR": dir}, "status", "--name", "nightly")
	if code != lsbNotRunning || !strings.Contains(out, filepath.Join(dir, "nightly.lock")+": not running") {
		t.Errorf("status in GUARD_DIR=%s: exit %d, %q", dir, code, out)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("the CLI's GUARD_DIR was not made: %v", err)
	}
	code, out = inProcess(t, Config{}, nil, "help", "status")
	if code != 0 || !strings.HasPrefix(out, "usage: guard status ") || !strings.Contains(out, "--pidfile PATH") {
		t.Errorf("help status: exit %d, %q", code, out)
	}
	code, out = inProcess(t, Config{Backend: fakeBackend{}}, nil, "--help")
	if code != 0 || !strings.Contains(out, "guard-etcd run") {
		t.Errorf("a CLI with a backend names itself guard-etcd: exit %d, %q", code, out)
	}
}

// fakeBackend is a lock backend that opens nothing.
type fakeBackend struct{}

func (fakeBackend) Flags(*flag.FlagSet) {}

func (fakeBackend) Open(lock, name string, argv []string) (instance.Locker, string, error) {
	return nil, "", os.ErrNotExist
}
