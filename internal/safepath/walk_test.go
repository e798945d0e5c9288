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

const nobody = 65534

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown to another user)")
	}
}

// realTempDir is a fresh directory named without symbolic links.
func realTempDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mkdir(t *testing.T, p string, mode os.FileMode) string {
	t.Helper()
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func symlink(t *testing.T, target, link string) string {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	return link
}

func TestOpenDir(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the path to open and the resolved path wanted, or
		// "" when OpenDir must fail with an error matching want and whose
		// text holds reason.
		setup  func(t *testing.T, base string) (path, resolved string)
		opts   Options
		want   error
		reason string
	}{
		{name: "plain", setup: func(t *testing.T, base string) (string, string) {
			d := mkdir(t, filepath.Join(base, "d"), 0o755)
			return d, d
		}},
		{name: "relative", setup: func(t *testing.T, base string) (string, string) {
			d := mkdir(t, filepath.Join(base, "d"), 0o755)
			t.Chdir(base)
			return "d/./", d
		}},
		{name: "dot-dot goes to the real parent", setup: func(t *testing.T, base string) (string, string) {
			x := mkdir(t, filepath.Join(base, "x"), 0o755)
			mkdir(t, filepath.Join(x, "y"), 0o755)
			link := symlink(t, filepath.Join(x, "y"), filepath.Join(base, "link"))
			return link + "/..", x
		}},
		{name: "dot-dot above the root", setup: func(t *testing.T, base string) (string, string) {
			return "/../../" + base, base
		}},
		{name: "trusted link followed, like /var/run -> /run", setup: func(t *testing.T, base string) (string, string) {
			run := mkdir(t, filepath.Join(base, "run"), 0o755)
			varDir := mkdir(t, filepath.Join(base, "var"), 0o755)
			symlink(t, "../run", filepath.Join(varDir, "run"))
			return filepath.Join(varDir, "run"), run
		}},
		{name: "absolute link followed", setup: func(t *testing.T, base string) (string, string) {
			run := mkdir(t, filepath.Join(base, "run"), 0o755)
			return symlink(t, run, filepath.Join(base, "link")), run
		}},
		{name: "sticky world-writable leaf", setup: func(t *testing.T, base string) (string, string) {
			d := mkdir(t, filepath.Join(base, "tmp"), 0o777|os.ModeSticky)
			return d, d
		}},
		{name: "sticky world-writable ancestor", setup: func(t *testing.T, base string) (string, string) {
			tmp := mkdir(t, filepath.Join(base, "tmp"), 0o777|os.ModeSticky)
			d := mkdir(t, filepath.Join(tmp, "mine"), 0o700)
			return d, d
		}},
		{name: "missing", want: fs.ErrNotExist, reason: "no such file", setup: func(t *testing.T, base string) (string, string) {
			return filepath.Join(base, "nope", "d"), ""
		}},
		{name: "file on the way", want: syscall.ENOTDIR, setup: func(t *testing.T, base string) (string, string) {
			os.WriteFile(filepath.Join(base, "f"), nil, 0o644)
			return filepath.Join(base, "f", "d"), ""
		}},
		{name: "world-writable leaf", want: ErrUnsafe, reason: "writable by other users (mode 0777)", setup: func(t *testing.T, base string) (string, string) {
			return mkdir(t, filepath.Join(base, "open"), 0o777), ""
		}},
		{name: "group-writable ancestor", want: ErrUnsafe, reason: "mode 0775", setup: func(t *testing.T, base string) (string, string) {
			g := mkdir(t, filepath.Join(base, "g"), 0o775)
			return mkdir(t, filepath.Join(g, "d"), 0o755), ""
		}},
		{name: "link loop", want: ErrUnsafe, reason: "more than 40 symbolic links", setup: func(t *testing.T, base string) (string, string) {
			symlink(t, "b", filepath.Join(base, "a"))
			symlink(t, "a", filepath.Join(base, "b"))
			return filepath.Join(base, "a"), ""
		}},
		{name: "link to itself", want: ErrUnsafe, reason: "more than 40 symbolic links", setup: func(t *testing.T, base string) (string, string) {
			return symlink(t, "self", filepath.Join(base, "self")), ""
		}},
		{name: "dangling link", want: fs.ErrNotExist, setup: func(t *testing.T, base string) (string, string) {
			return symlink(t, "nowhere", filepath.Join(base, "l")), ""
		}},
		{name: "directory of another user", want: ErrUnsafe, reason: "owned by uid 65534", setup: func(t *testing.T, base string) (string, string) {
			needRoot(t)
			d := mkdir(t, filepath.Join(base, "theirs"), 0o755)
			os.Chown(d, nobody, nobody)
			return d, ""
		}},
		{name: "link in a directory of another user", want: ErrUnsafe, reason: "owned by uid 65534", setup: func(t *testing.T, base string) (string, string) {
			needRoot(t)
			target := mkdir(t, filepath.Join(base, "target"), 0o755)
			app := mkdir(t, filepath.Join(base, "app"), 0o755)
			link := symlink(t, target, filepath.Join(app, "locks"))
			os.Lchown(link, nobody, nobody)
			os.Chown(app, nobody, nobody)
			return link, ""
		}},
		{name: "root's link in a directory of another user", want: ErrUnsafe, reason: filepath.Join("app") + ": refused", setup: func(t *testing.T, base string) (string, string) {
			needRoot(t)
			target := mkdir(t, filepath.Join(base, "target"), 0o755)
			app := mkdir(t, filepath.Join(base, "app"), 0o755)
			link := symlink(t, target, filepath.Join(app, "locks"))
			os.Chown(app, nobody, nobody)
			return link, ""
		}},
		{name: "another user's link in a sticky directory", want: ErrUnsafe, reason: "symbolic link (to", setup: func(t *testing.T, base string) (string, string) {
			needRoot(t)
			target := mkdir(t, filepath.Join(base, "target"), 0o755)
			tmp := mkdir(t, filepath.Join(base, "tmp"), 0o777|os.ModeSticky)
			link := symlink(t, target, filepath.Join(tmp, "locks"))
			os.Lchown(link, nobody, nobody)
			return link, ""
		}},
		{name: "any owner: directory of another user", opts: Options{AnyOwner: true}, setup: func(t *testing.T, base string) (string, string) {
			needRoot(t)
			d := mkdir(t, filepath.Join(base, "theirs"), 0o755)
			os.Chown(d, nobody, nobody)
			return d, d
		}},
		{name: "any owner: still not world-writable", opts: Options{AnyOwner: true}, want: ErrUnsafe, reason: "without the sticky bit", setup: func(t *testing.T, base string) (string, string) {
			return mkdir(t, filepath.Join(base, "open"), 0o777), ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, resolved := tt.setup(t, realTempDir(t))
			d, err := OpenDir(p, tt.opts)
			if tt.want != nil {
				if err == nil {
					d.Close()
					t.Fatalf("OpenDir(%q) opened %s, want an error matching %v", p, d.Path(), tt.want)
				}
				if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.reason) {
					t.Fatalf("OpenDir(%q) = %v, want an error matching %v saying %q", p, err, tt.want, tt.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("OpenDir(%q) = %v", p, err)
			}
			defer d.Close()
			if d.Path() != resolved {
				t.Errorf("OpenDir(%q).Path() = %q, want %q", p, d.Path(), resolved)
			}
			var want syscall.Stat_t
			if err := syscall.Stat(resolved, &want); err != nil {
				t.Fatal(err)
			}
			if st := d.Stat(); st.Ino != want.Ino || st.Dev != want.Dev {
				t.Errorf("OpenDir(%q) opened another directory than %s", p, resolved)
			}
		})
	}
}
