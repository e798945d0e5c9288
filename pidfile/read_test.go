package pidfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/internal/guardtest"
)

// safeDir returns a fresh directory only its owner can write.
func safeDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeFile(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // past the umask
		t.Fatal(err)
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		guardtest.Missing(t, "needs root (chown to another user)")
	}
}

func TestReadOK(t *testing.T) {
	dir := safeDir(t)
	path := filepath.Join(dir, "ok.pid")
	writeFile(t, path, "4321\n", 0o644)
	s, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	sys := fi.Sys().(*syscall.Stat_t)
	if s.Path != path || s.PID != 4321 || !s.ModTime.Equal(fi.ModTime()) ||
		s.Dev != uint64(sys.Dev) || s.Ino != sys.Ino || s.UID != uint32(os.Geteuid()) {
		t.Errorf("Read = %+v; want pid 4321, mtime %v, dev %d ino %d uid %d",
			s, fi.ModTime(), sys.Dev, sys.Ino, os.Geteuid())
	}
	// Through a symlinked directory (like /var/run -> /run).
	link := filepath.Join(filepath.Dir(dir), "varrun")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if s, err := Read(filepath.Join(link, "ok.pid")); err != nil || s.PID != 4321 {
		t.Errorf("Read through a symlinked directory = %+v, %v", s, err)
	}
}

func TestReadRefuses(t *testing.T) {
	tests := []struct {
		name  string
		root  bool                                  // needs root
		setup func(t *testing.T, dir string) string // returns the path to Read
		want  error
		// reason is a substring of the error
		reason string
	}{
		{name: "missing", reason: "no such file", want: fs.ErrNotExist, setup: func(t *testing.T, dir string) string {
			return filepath.Join(dir, "missing.pid")
		}},
		{name: "missing directory", reason: "no such file", want: fs.ErrNotExist, setup: func(t *testing.T, dir string) string {
			return filepath.Join(dir, "nodir", "x.pid")
		}},
		{name: "symlink", reason: "symbolic link", want: ErrUnsafe, setup: func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "real.pid"), "123\n", 0o644)
			os.Symlink("real.pid", filepath.Join(dir, "link.pid"))
			return filepath.Join(dir, "link.pid")
		}},
		{name: "dangling symlink", reason: "symbolic link", want: ErrUnsafe, setup: func(t *testing.T, dir string) string {
			os.Symlink("/nonexistent", filepath.Join(dir, "link.pid"))
			return filepath.Join(dir, "link.pid")
		}},
		{name: "directory", reason: "is a directory", want: ErrUnsafe, setup: func(t *testing.T, dir string) string {
			os.Mkdir(filepath.Join(dir, "d.pid"), 0o755)
			return filepath.Join(dir, "d.pid")
		}},
		{name: "FIFO", reason: "FIFO", want: ErrUnsafe, setup: func(t *testing.T, dir string) string {
			if err := unix.Mkfifo(filepath.Join(dir, "fifo.pid"), 0o644); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "fifo.pid")
		}},
		{name: "device", reason: "device", root: true, want: ErrUnsafe, setup: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "null.pid")
			if err := unix.Mknod(p, unix.S_IFCHR|0o644, int(unix.Mkdev(1, 3))); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{name: "world-writable directory", reason: "writable by other users (mode 0777) without the sticky bit", want: ErrUnsafe, setup: func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "x.pid"), "123\n", 0o644)
			os.Chmod(dir, 0o777)
			return filepath.Join(dir, "x.pid")
		}},
		{name: "group-writable directory", reason: "(mode 0775) without the sticky bit", want: ErrUnsafe, setup: func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "x.pid"), "123\n", 0o644)
			os.Chmod(dir, 0o775)
			return filepath.Join(dir, "x.pid")
		}},
		{name: "world-writable file", reason: "writable by other users (mode 0666)", want: ErrUnsafe, setup: func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "x.pid"), "123\n", 0o666)
			return filepath.Join(dir, "x.pid")
		}},
		{name: "foreign file in sticky directory", reason: "owned by uid 65534", root: true, want: ErrUnsafe, setup: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "x.pid")
			writeFile(t, p, "123\n", 0o644)
			os.Chown(p, 65534, 65534)
			os.Chmod(dir, 0o777|os.ModeSticky)
			return p
		}},
		{name: "foreign file in own directory", reason: "owned by uid 65534", root: true, want: ErrUnsafe, setup: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "x.pid")
			writeFile(t, p, "123\n", 0o644)
			os.Chown(p, 65534, 65534)
			return p
		}},
		{name: "empty", reason: "empty", want: ErrMalformed, setup: func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "x.pid"), "", 0o644)
			return filepath.Join(dir, "x.pid")
		}},
		{name: "65 bytes", reason: "larger than 64 bytes", want: ErrMalformed, setup: func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "x.pid"), "123\n"+strings.Repeat("#", 61), 0o644)
			return filepath.Join(dir, "x.pid")
		}},
		{name: "1 MiB", reason: "larger than 64 bytes", want: ErrMalformed, setup: func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "x.pid"), strings.Repeat("1", 1<<20), 0o644)
			return filepath.Join(dir, "x.pid")
		}},
		{name: "junk", reason: `unexpected 'P'`, want: ErrMalformed, setup: func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "x.pid"), "PID=123\n", 0o644)
			return filepath.Join(dir, "x.pid")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root {
				needRoot(t)
			}
			path := tt.setup(t, safeDir(t))
			type result struct {
				s   *Snapshot
				err error
			}
			ch := make(chan result, 1)
			go func() { s, err := Read(path); ch <- result{s, err} }()
			var r result
			select {
			case r = <-ch:
			case <-time.After(60 * time.Second):
				t.Fatalf("Read(%s) hangs", path)
			}
			if !errors.Is(r.err, tt.want) {
				t.Fatalf("Read = %+v, %v; want an error matching %v", r.s, r.err, tt.want)
			}
			if r.s != nil {
				t.Errorf("Read returned %+v with its error", r.s)
			}
			if !strings.Contains(r.err.Error(), filepath.Dir(path)) {
				t.Errorf("error %q does not name the path or its directory", r.err)
			}
			if !strings.Contains(r.err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", r.err, tt.reason)
			}
			var me *MalformedError
			if errors.As(r.err, &me) && me.Path != path {
				t.Errorf("MalformedError.Path = %q, want %q", me.Path, path)
			}
		})
	}
}

func TestReadTrusted(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string
	}{
		{name: "own file in sticky world-writable directory", setup: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "x.pid")
			writeFile(t, p, "123\n", 0o644)
			os.Chmod(dir, 0o777|os.ModeSticky)
			return p
		}},
		{name: "file of the directory's owner", setup: func(t *testing.T, dir string) string {
			needRoot(t)
			p := filepath.Join(dir, "x.pid")
			writeFile(t, p, "123\n", 0o644)
			os.Chown(p, 65534, 65534)
			os.Chown(dir, 65534, 65534)
			return p
		}},
		{name: "file of the directory's owner, sticky", setup: func(t *testing.T, dir string) string {
			needRoot(t)
			p := filepath.Join(dir, "x.pid")
			writeFile(t, p, "123\n", 0o644)
			os.Chown(p, 65534, 65534)
			os.Chown(dir, 65534, 65534)
			os.Chmod(dir, 0o777|os.ModeSticky)
			return p
		}},
		{name: "read-only file", setup: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "x.pid")
			writeFile(t, p, "123", 0o400)
			return p
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.setup(t, safeDir(t))
			if s, err := Read(path); err != nil || s.PID != 123 {
				t.Fatalf("Read = %+v, %v; want pid 123", s, err)
			}
		})
	}
}

func TestReadPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file; needs an unprivileged user")
	}
	dir := safeDir(t)
	p := filepath.Join(dir, "x.pid")
	writeFile(t, p, "123\n", 0o000)
	if _, err := Read(p); !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("Read(mode 000) = %v, want fs.ErrPermission", err)
	}
}
