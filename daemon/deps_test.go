package daemon

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDependencies keeps the package light (in the spirit of tailscale's deptest): no
// HTTP, no Prometheus, no third-party module but golang.org/x/sys, and of guard's own
// packages only guard/internal/... (safepath).
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
			thirdParty := strings.Contains(strings.Split(path, "/")[0], ".")
			switch {
			case path == "net/http", strings.HasPrefix(path, "net/http/"), path == "expvar",
				strings.Contains(path, "prometheus"),
				thirdParty && !strings.HasPrefix(path, "golang.org/x/sys/"),
				strings.HasPrefix(path, "guard/") && !strings.HasPrefix(path, "guard/internal/"):
				t.Errorf("%s imports %q", name, path)
			}
		}
	}
}
