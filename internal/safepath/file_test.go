//go:build linux

package safepath

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestOpenFileRefuses(t *testing.T) {
	tests := []struct {
		name   string
		root   bool
		setup  func(t *testing.T, dir string) // creates dir/f
		reason string
	}{
		{name: "symlink", reason: "symbolic link", setup: func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "victim"), []byte("keep\n"), 0o644)
			symlink(t, "victim", filepath.Join(dir, "f"))
		}},
		{name: "dangling symlink", reason: "symbolic link", setup: func(t *testing.T, dir string) {
			symlink(t, "victim", filepath.Join(dir, "f"))
		}},
		{name: "fifo", reason: "not a regular file", setup: func(t *testing.T, dir string) {
			syscall.Mkfifo(filepath.Join(dir, "f"), 0o644)
		}},
		{name: "directory", reason: "is a directory", setup: func(t *testing.T, dir string) {
			os.Mkdir(filepath.Join(dir, "f"), 0o755)
		}},
		{name: "hard link", reason: "2 hard links", setup: func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "victim"), []byte("keep\n"), 0o644)
			os.Link(filepath.Join(dir, "victim"), filepath.Join(dir, "f"))
		}},
		{name: "another user's file", root: true, reason: "owned by uid 65534", setup: func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "f"), nil, 0o644)
			os.Chown(filepath.Join(dir, "f"), nobody, nobody)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root {
				needRoot(t)
			}
			dir := realTempDir(t)
			tt.setup(t, dir)
			f, err := OpenFile(filepath.Join(dir, "f"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
			if err == nil {
				f.Close()
				t.Fatal("opened it")
			}
			var ue *UnsafeError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.reason) || ue.Path != filepath.Join(dir, "f") {
				t.Fatalf("OpenFile = %v, want an *UnsafeError naming %s saying %q", err, filepath.Join(dir, "f"), tt.reason)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "victim")); err == nil && string(b) != "keep\n" {
				t.Errorf("victim changed to %q", b)
			}
		})
	}
}

func TestOpenFileCreates(t *testing.T) {
	dir := realTempDir(t)
	p := filepath.Join(dir, "out.log")
	for _, line := range []string{"one\n", "two\n"} {
		f, err := OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(line)
		f.Close()
	}
	if b, _ := os.ReadFile(p); string(b) != "one\ntwo\n" {
		t.Errorf("content %q", b)
	}
	if fi, _ := os.Stat(p); fi.Mode() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	if _, err := OpenFile(filepath.Join(dir, "nodir", "f"), os.O_RDONLY, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing directory: %v", err)
	}
	if _, err := OpenFile(dir+"/", os.O_RDONLY, 0); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("no file name: %v", err)
	}
}

func TestWriteFile(t *testing.T) {
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := realTempDir(t)
	d, err := OpenDir(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	os.WriteFile(filepath.Join(dir, "x"), []byte("old\n"), 0o600)
	fi, err := d.WriteFile("x", []byte("new\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.Lstat(filepath.Join(dir, "x"))
	if err != nil || !os.SameFile(fi, got) || got.Mode() != 0o644 {
		t.Fatalf("after WriteFile: %v %v, want the file it wrote with mode 0644", got, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "x")); string(b) != "new\n" {
		t.Errorf("content %q", b)
	}
	if names, _ := os.ReadDir(dir); len(names) != 1 {
		t.Errorf("directory holds %v, want only x", names)
	}
	// A link at the name is replaced, its target untouched.
	os.WriteFile(filepath.Join(dir, "victim"), []byte("keep\n"), 0o644)
	symlink(t, "victim", filepath.Join(dir, "l"))
	if _, err := d.WriteFile("l", []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "victim")); string(b) != "keep\n" {
		t.Errorf("link target written: %q", b)
	}
	if _, err := d.WriteFile("../x", nil, 0o644); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("WriteFile(../x) = %v, want fs.ErrInvalid", err)
	}
}

func TestMkdir(t *testing.T) {
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := realTempDir(t)
	d, err := OpenDir(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Mkdir("guard", 0o755); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "guard")); err != nil || fi.Mode() != os.ModeDir|0o755 {
		t.Fatalf("created %v, %v; want a 0755 directory", fi, err)
	}
	if err := d.Mkdir("guard", 0o700); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second Mkdir = %v, want fs.ErrExist", err)
	}
	if fi, _ := os.Lstat(filepath.Join(dir, "guard")); fi.Mode() != os.ModeDir|0o755 {
		t.Errorf("existing directory changed to %v", fi.Mode())
	}
}

func TestWritable(t *testing.T) {
	dir := realTempDir(t)
	d, err := OpenDir(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Writable(); err != nil {
		t.Errorf("Writable = %v", err)
	}
}
