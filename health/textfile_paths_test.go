package health

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/guardkit/guard/internal/safepath"
)

// A textfile directory reached through a link that another user planted in
// their own directory is refused, and nothing is written where it leads; a
// link root owns in a root-owned directory (/var/run -> /run) is followed.
func TestWriteTextfileLinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown to another user)")
	}
	base := t.TempDir()
	target := filepath.Join(base, "target")
	app := filepath.Join(base, "app")
	for _, d := range []string{target, app} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(target, filepath.Join(app, "prom")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(base, "varrun")); err != nil {
		t.Fatal(err)
	}
	os.Chown(app, 65534, 65534)
	err := WriteTextfile(filepath.Join(app, "prom"), "j", JobRun{Result: ResultSuccess})
	if !errors.Is(err, safepath.ErrUnsafe) {
		t.Fatalf("WriteTextfile through another user's directory = %v, want safepath.ErrUnsafe", err)
	}
	if names, _ := os.ReadDir(target); len(names) != 0 {
		t.Fatalf("wrote %v in the link's target", names)
	}
	if err := WriteTextfile(filepath.Join(base, "varrun"), "j", JobRun{Result: ResultSuccess}); err != nil {
		t.Fatalf("WriteTextfile through root's link: %v", err)
	}
	if _, err := os.Stat(filepath.Join(target, "j.prom")); err != nil {
		t.Fatal(err)
	}
}
