package tests

import (
	"os/exec"
	"strings"
	"testing"
)

// The core packages must not pull in HTTP or Prometheus: a cron job that
// only wants a lock pays for neither.
func TestCoreDependencies(t *testing.T) {
	forbidden := []string{"net/http", "github.com/prometheus/", "expvar", "net/http/pprof"}
	for _, pkg := range []string{"guard/instance", "guard/pidfile", "guard/internal/proc", "guard/daemon"} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range forbidden {
				if dep == f || strings.HasPrefix(dep, f) && strings.HasSuffix(f, "/") {
					t.Errorf("%s imports %s", pkg, dep)
				}
			}
		}
	}
}
