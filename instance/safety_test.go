package instance

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestUnsafePathsRefused(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the lock path
		keep  string                                // content that must survive, if any
	}{
		{"symlink to a file", func(t *testing.T, dir string) string {
			os.WriteFile(filepath.Join(dir, "victim"), []byte("precious\n"), 0o644)
			os.Symlink(filepath.Join(dir, "victim"), filepath.Join(dir, "a.lock"))
			return filepath.Join(dir, "a.lock")
		}, "precious\n"},
		{"dangling symlink", func(t *testing.T, dir string) string {
			os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, "a.lock"))
			return filepath.Join(dir, "a.lock")
		}, ""},
		{"foreign content", func(t *testing.T, dir string) string {
			os.WriteFile(filepath.Join(dir, "a.lock"), []byte("precious\n"), 0o644)
			return filepath.Join(dir, "a.lock")
		}, "precious\n"},
		{"hard link", func(t *testing.T, dir string) string {
			os.WriteFile(filepath.Join(dir, "victim"), nil, 0o644)
			os.Link(filepath.Join(dir, "victim"), filepath.Join(dir, "a.lock"))
			return filepath.Join(dir, "a.lock")
		}, ""},
		{"fifo", func(t *testing.T, dir string) string {
			syscall.Mkfifo(filepath.Join(dir, "a.lock"), 0o644)
			return filepath.Join(dir, "a.lock")
		}, ""},
		{"directory", func(t *testing.T, dir string) string {
			os.Mkdir(filepath.Join(dir, "a.lock"), 0o755)
			return filepath.Join(dir, "a.lock")
		}, ""},
		{"world-writable directory", func(t *testing.T, dir string) string {
			d := filepath.Join(dir, "open")
			os.Mkdir(d, 0o777)
			os.Chmod(d, 0o777)
			return filepath.Join(d, "a.lock")
		}, ""},
		{"directory of another user", func(t *testing.T, dir string) string {
			if os.Geteuid() != 0 {
				t.Skip("needs root to chown")
			}
			d := filepath.Join(dir, "theirs")
			os.Mkdir(d, 0o755)
			os.Chown(d, 65534, 65534)
			return filepath.Join(d, "a.lock")
		}, ""},
		{"file of another user in a sticky directory", func(t *testing.T, dir string) string {
			if os.Geteuid() != 0 {
				t.Skip("needs root to chown")
			}
			d := filepath.Join(dir, "sticky")
			os.Mkdir(d, 0o777)
			syscall.Chmod(d, 0o1777)
			p := filepath.Join(d, "a.lock")
			os.WriteFile(p, nil, 0o666)
			os.Chown(p, 65534, 65534)
			return p
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := tempLockDir(t)
			path := tc.setup(t, dir)
			le, err := mustNew(t, path).TryLock(context.Background())
			if err == nil {
				le.Release()
				t.Fatal("acquired an unsafe lock path")
			}
			var ue *UnsafeError
			if !errors.As(err, &ue) || !errors.Is(err, ErrUnsafe) {
				t.Fatalf("err = %v (%T), want *UnsafeError", err, err)
			}
			if tc.keep != "" {
				b, _ := os.ReadFile(filepath.Join(dir, "victim"))
				if tc.name == "foreign content" {
					b, _ = os.ReadFile(path)
				}
				if string(b) != tc.keep {
					t.Fatalf("content changed to %q", b)
				}
			}
		})
	}
}

func TestStickyDirectoryIsFine(t *testing.T) {
	d := filepath.Join(tempLockDir(t), "sticky")
	os.Mkdir(d, 0o777)
	syscall.Chmod(d, 0o1777)
	le, err := mustNew(t, filepath.Join(d, "a.lock")).TryLock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	le.Release()
}

func TestNetworkFSClassified(t *testing.T) {
	for magic, want := range map[int64]string{0x6969: "nfs", 0xff534d42: "cifs", 0x65735546: "fuse", 0xef53: "", 0x01021994: ""} {
		if got := NetworkFS(magic); got != want {
			t.Errorf("NetworkFS(%#x) = %q, want %q", magic, got, want)
		}
	}
}
