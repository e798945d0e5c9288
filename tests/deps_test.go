package tests

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/guardkit/guard/internal/guardtest"
)

// The import rules of the design (docs/ARCHITECTURE.md): the lock imports
// neither job, health nor daemon; job does not watch locks; health imports
// neither daemon nor job; report (pings, pushes, captured output) knows no
// lock, job or daemon, and none of them knows it; no library imports the command line; and the core
// packages pull in neither HTTP nor Prometheus, so a cron job that only wants
// a lock pays for neither. Paths are relative to guardtest.Module.
func TestImportRules(t *testing.T) {
	noHTTP := []string{"net/http", "expvar", "github.com/prometheus/client_golang/prometheus"}
	rules := map[string][]string{
		"instance":      {"job", "health", "daemon", "report", "internal/cli"},
		"job":           {"instance", "health", "daemon", "pidfile", "report", "internal/cli"},
		"health":        {"daemon", "job", "report", "internal/cli"},
		"daemon":        {"instance", "job", "health", "report", "internal/cli"},
		"report":        {"instance", "job", "daemon", "health", "pidfile", "internal/cli"},
		"pidfile":       {"instance", "job", "health", "daemon", "internal/cli"},
		"internal/proc": {"instance", "job", "health", "daemon", "pidfile"},
	}
	core := map[string]bool{"instance": true, "pidfile": true, "internal/proc": true, "daemon": true}
	for pkg, banned := range rules {
		out, err := exec.Command("go", "list", "-deps", guardtest.Module+"/"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		deps := map[string]bool{}
		for _, d := range strings.Fields(string(out)) {
			deps[d] = true
		}
		for _, b := range banned {
			if deps[guardtest.Module+"/"+b] {
				t.Errorf("%s imports %s", pkg, b)
			}
		}
		if core[pkg] {
			for _, b := range noHTTP {
				if deps[b] {
					t.Errorf("%s imports %s: the core pays for no HTTP or Prometheus", pkg, b)
				}
			}
		}
	}
}
