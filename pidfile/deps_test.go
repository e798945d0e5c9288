package pidfile

import (
	"go/build"
	"strings"
	"testing"
)

// TestImports keeps pidfile a leaf of the kit: the standard library,
// golang.org/x/sys, guard/internal/proc and guard/internal/safepath only (no HTTP, no Prometheus, no
// other guard package).
func TestImports(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		std := !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") && !strings.HasPrefix(imp, "guard")
		switch {
		case imp == "net/http" || strings.HasPrefix(imp, "net/http/"):
			t.Errorf("pidfile imports %s", imp)
		case std, imp == "golang.org/x/sys/unix", imp == "guard/internal/proc", imp == "guard/internal/safepath":
		default:
			t.Errorf("pidfile imports %s; only the standard library, x/sys/unix, internal/proc and internal/safepath are allowed", imp)
		}
	}
}
