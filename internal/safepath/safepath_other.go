//go:build !linux

package safepath

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// Elsewhere than Linux, Dir is a plain path: enough for the packages that
// import this one to build and work, without the guarantees of the package.

// Options adjust the rule of OpenDir; it is not applied on this system.
type Options struct{ AnyOwner bool }

// Dir is a directory path.
type Dir struct{ path string }

// OpenDir checks that p is a directory.
func OpenDir(p string, _ Options) (*Dir, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, &fs.PathError{Op: "open directory", Path: p, Err: err}
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &fs.PathError{Op: "open directory", Path: p, Err: errors.New("not a directory")}
	}
	return &Dir{path: abs}, nil
}

// Path returns the directory's absolute path.
func (d *Dir) Path() string { return d.path }

// Close does nothing.
func (d *Dir) Close() error { return nil }

// OpenFile opens the file path.
func OpenFile(path string, flag int, perm fs.FileMode) (*os.File, error) {
	return os.OpenFile(path, flag, perm)
}

// OpenFile opens name in d.
func (d *Dir) OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	return os.OpenFile(filepath.Join(d.path, name), flag, perm)
}

// WriteFile replaces name in d with data through a synced temporary file.
func (d *Dir) WriteFile(name string, data []byte, perm fs.FileMode) (fs.FileInfo, error) {
	tmp := filepath.Join(d.path, fmt.Sprintf(".%s.%016x.tmp", name, rand.Uint64()))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return nil, err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	var fi fs.FileInfo
	if err == nil {
		fi, err = f.Stat()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(d.path, name))
	}
	if err != nil {
		os.Remove(tmp)
		return nil, err
	}
	return fi, nil
}
