package etcdlock

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDependencies: the lock neither imports guard's job, health or daemon
// (DESIGN.md's arrows), nor HTTP or Prometheus, nor etcd's concurrency
// package, whose Session keeps leases alive with a deadline counted from
// the receive time of each answer.
func TestDependencies(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			switch {
			case path == "net/http", strings.HasPrefix(path, "net/http/"), path == "expvar",
				strings.Contains(path, "prometheus"),
				strings.HasPrefix(path, "go.etcd.io/etcd/client/v3/concurrency"),
				strings.HasPrefix(path, "go.etcd.io/etcd/server/"),
				path == "guard/job", path == "guard/health", path == "guard/daemon":
				t.Errorf("%s imports %q", name, path)
			}
		}
	}
}
