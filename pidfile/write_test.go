package pidfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestWrite(t *testing.T) {
	// A restrictive umask must not change the mode asked for.
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })
	for _, perm := range []os.FileMode{0o644, 0o640, 0o600, 0o444} {
		t.Run(perm.String(), func(t *testing.T) {
			dir := safeDir(t)
			path := filepath.Join(dir, "daemon.pid")
			writeFile(t, path, "999\n", 0o644) // an old one, replaced
			f, err := Write(path, os.Getpid(), perm)
			if err != nil {
				t.Fatal(err)
			}
			if f.Path != path || f.PID != os.Getpid() {
				t.Errorf("Write = %+v", f)
			}
			b, err := os.ReadFile(path)
			if want := strconv.Itoa(os.Getpid()) + "\n"; err != nil || string(b) != want {
				t.Errorf("content %q, %v; want %q", b, err, want)
			}
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != perm {
				t.Errorf("mode %v, want %v", fi.Mode(), perm)
			}
			if names := entries(t, dir); len(names) != 1 || names[0] != "daemon.pid" {
				t.Errorf("directory holds %q, want only daemon.pid (no temporary file left)", names)
			}
			if s, err := Read(path); err != nil || s.PID != os.Getpid() {
				t.Errorf("Read after Write = %+v, %v", s, err)
			}
		})
	}
}

func TestWriteRefuses(t *testing.T) {
	self := os.Getpid()
	tests := []struct {
		name  string
		pid   int
		perm  os.FileMode
		setup func(t *testing.T, dir string) string
		want  error
	}{
		{name: "symlink", pid: self, perm: 0o644, want: ErrUnsafe, setup: func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "target"), "keep\n", 0o644)
			os.Symlink("target", filepath.Join(dir, "x.pid"))
			return filepath.Join(dir, "x.pid")
		}},
		{name: "dangling symlink", pid: self, perm: 0o644, want: ErrUnsafe, setup: func(t *testing.T, dir string) string {
			os.Symlink("target", filepath.Join(dir, "x.pid"))
			return filepath.Join(dir, "x.pid")
		}},
		{name: "directory", pid: self, perm: 0o644, want: ErrUnsafe, setup: func(t *testing.T, dir string) string {
			os.Mkdir(filepath.Join(dir, "x.pid"), 0o755)
			return filepath.Join(dir, "x.pid")
		}},
		{name: "world-writable directory", pid: self, perm: 0o644, want: ErrUnsafe, setup: func(t *testing.T, dir string) string {
			os.Chmod(dir, 0o777)
			return filepath.Join(dir, "x.pid")
		}},
		{name: "foreign file in sticky directory", pid: self, perm: 0o644, want: ErrUnsafe, setup: func(t *testing.T, dir string) string {
			needRoot(t)
			p := filepath.Join(dir, "x.pid")
			writeFile(t, p, "123\n", 0o644)
			os.Chown(p, 65534, 65534)
			os.Chmod(dir, 0o777|os.ModeSticky)
			return p
		}},
		{name: "missing directory", pid: self, perm: 0o644, want: fs.ErrNotExist, setup: func(t *testing.T, dir string) string {
			return filepath.Join(dir, "nodir", "x.pid")
		}},
		{name: "pid 1", pid: 1, perm: 0o644, want: fs.ErrInvalid, setup: func(t *testing.T, dir string) string {
			return filepath.Join(dir, "x.pid")
		}},
		{name: "pid 0", pid: 0, perm: 0o644, want: fs.ErrInvalid, setup: func(t *testing.T, dir string) string {
			return filepath.Join(dir, "x.pid")
		}},
		{name: "pid -1", pid: -1, perm: 0o644, want: fs.ErrInvalid, setup: func(t *testing.T, dir string) string {
			return filepath.Join(dir, "x.pid")
		}},
		{name: "writable by others", pid: self, perm: 0o666, want: fs.ErrInvalid, setup: func(t *testing.T, dir string) string {
			return filepath.Join(dir, "x.pid")
		}},
		{name: "setuid bit", pid: self, perm: 0o644 | os.ModeSetuid, want: fs.ErrInvalid, setup: func(t *testing.T, dir string) string {
			return filepath.Join(dir, "x.pid")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := safeDir(t)
			path := tt.setup(t, dir)
			before := entries(t, dir)
			f, err := Write(path, tt.pid, tt.perm)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Write = %+v, %v; want an error matching %v", f, err, tt.want)
			}
			if after := entries(t, dir); len(after) != len(before) {
				t.Errorf("directory changed from %q to %q", before, after)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "target")); err == nil && string(b) != "keep\n" {
				t.Errorf("symlink target rewritten: %q", b)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	dir := safeDir(t)
	path := filepath.Join(dir, "x.pid")
	f, err := Write(path, os.Getpid(), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Remove: %v", err)
	}
	// Idempotent, even if someone else writes the path afterwards.
	writeFile(t, path, strconv.Itoa(os.Getpid())+"\n", 0o644)
	if err := f.Remove(); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("second Remove touched a file it did not write: %v", err)
	}
}

func TestRemoveGone(t *testing.T) {
	dir := safeDir(t)
	path := filepath.Join(dir, "x.pid")
	f, err := Write(path, os.Getpid(), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	if err := f.Remove(); err != nil {
		t.Errorf("Remove of a vanished file: %v", err)
	}
}

func TestRemoveRefusesReplaced(t *testing.T) {
	other := strconv.Itoa(os.Getppid()) + "\n"
	tests := []struct {
		name    string
		replace func(t *testing.T, path string)
		want    string // content left in place
	}{
		{name: "other inode, same content", want: strconv.Itoa(os.Getpid()) + "\n", replace: func(t *testing.T, path string) {
			tmp := path + ".new"
			writeFile(t, tmp, strconv.Itoa(os.Getpid())+"\n", 0o644)
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "other inode, other content", want: other, replace: func(t *testing.T, path string) {
			tmp := path + ".new"
			writeFile(t, tmp, other, 0o644)
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "rewritten in place", want: other, replace: func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(other), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "symlink", want: strconv.Itoa(os.Getpid()) + "\n", replace: func(t *testing.T, path string) {
			os.Rename(path, path+".moved")
			if err := os.Symlink(filepath.Base(path)+".moved", path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(safeDir(t), "x.pid")
			f, err := Write(path, os.Getpid(), 0o644)
			if err != nil {
				t.Fatal(err)
			}
			tt.replace(t, path)
			for range 2 { // refuses every time
				if err := f.Remove(); !errors.Is(err, ErrReplaced) {
					t.Fatalf("Remove = %v, want ErrReplaced", err)
				}
			}
			if b, err := os.ReadFile(path); err != nil || string(b) != tt.want {
				t.Errorf("left %q, %v; want %q untouched", b, err, tt.want)
			}
		})
	}
}

func TestRemoveConcurrent(t *testing.T) {
	path := filepath.Join(safeDir(t), "x.pid")
	f, err := Write(path, os.Getpid(), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { errs <- f.Remove() })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
