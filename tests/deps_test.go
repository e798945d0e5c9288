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

// The import rules of the design: the lock imports neither job, health nor
// daemon; job does not watch locks; health imports neither daemon nor job;
// no library imports the command line.
func TestImportRules(t *testing.T) {
	rules := map[string][]string{
		"guard/instance":      {"guard/job", "guard/health", "guard/daemon", "guard/internal/cli"},
		"guard/job":           {"guard/instance", "guard/health", "guard/daemon", "guard/pidfile", "guard/internal/cli"},
		"guard/health":        {"guard/daemon", "guard/job", "guard/internal/cli"},
		"guard/daemon":        {"guard/instance", "guard/job", "guard/health", "guard/internal/cli"},
		"guard/pidfile":       {"guard/instance", "guard/job", "guard/health", "guard/daemon", "guard/internal/cli"},
		"guard/internal/proc": {"guard/instance", "guard/job", "guard/health", "guard/daemon", "guard/pidfile"},
	}
	for pkg, banned := range rules {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		deps := strings.Fields(string(out))
		for _, b := range banned {
			for _, d := range deps {
				if d == b {
					t.Errorf("%s imports %s", pkg, b)
				}
			}
		}
	}
}
