package pidfile

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func BenchmarkParse(b *testing.B) {
	in := []byte("12345\n")
	for b.Loop() {
		if _, err := Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

func benchFile(b *testing.B) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "run")
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "bench.pid")
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

func BenchmarkRead(b *testing.B) {
	path := benchFile(b)
	for b.Loop() {
		if _, err := Read(path); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInspect(b *testing.B) {
	path := benchFile(b)
	for b.Loop() {
		info, err := Inspect(path)
		if err != nil || info.State != Running {
			b.Fatal(info, err)
		}
	}
}
