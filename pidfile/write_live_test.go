package pidfile

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A PID file that names another live process is that process's: Write does
// not take it over (guard run --pidfile would otherwise delete it at exit).
func TestWriteRefusesLive(t *testing.T) {
	victim := startVictim(t)
	path := pidFile(t, victim.Process.Pid)
	want := strconv.Itoa(victim.Process.Pid) + "\n"
	f, err := Write(path, os.Getpid(), 0o644)
	if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), "live process") {
		t.Fatalf("Write over a live process's PID file = %+v, %v; want ErrUnsafe", f, err)
	}
	if b, _ := os.ReadFile(path); string(b) != want {
		t.Errorf("PID file changed to %q, want %q", b, want)
	}
	// Its own PID, and a dead one, are replaced.
	if _, err := Write(path, victim.Process.Pid, 0o644); err != nil {
		t.Errorf("Write of the same PID: %v", err)
	}
	victim.Process.Kill()
	victim.Wait()
	if _, err := Write(path, os.Getpid(), 0o644); err != nil {
		t.Errorf("Write over a dead process's PID file: %v", err)
	}
}

// A symbolic link that another user planted in their own directory is not
// followed, even to a directory guard trusts; root's link there is not
// either, since that user can replace it.
func TestWriteRefusesForeignLinks(t *testing.T) {
	needRoot(t)
	base := filepath.Dir(safeDir(t))
	target := filepath.Join(base, "target")
	app := filepath.Join(base, "app")
	for _, d := range []string{target, app} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(target, filepath.Join(app, "run")); err != nil {
		t.Fatal(err)
	}
	os.Chown(app, 65534, 65534)
	if _, err := Write(filepath.Join(app, "run", "x.pid"), os.Getpid(), 0o644); !errors.Is(err, ErrUnsafe) ||
		!strings.Contains(err.Error(), app+": directory owned by uid 65534") {
		t.Fatalf("Write through another user's directory = %v, want ErrUnsafe naming %s", err, app)
	}
	if names := entries(t, target); len(names) != 0 {
		t.Errorf("wrote %q in the link's target", names)
	}
	// Reading is allowed: that user's daemon may keep its PID file there.
	writeFile(t, filepath.Join(target, "x.pid"), "123\n", 0o644)
	if s, err := Read(filepath.Join(app, "run", "x.pid")); err != nil || s.PID != 123 {
		t.Errorf("Read through another user's directory = %+v, %v", s, err)
	}
}
