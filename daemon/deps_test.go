package daemon

import (
	"strings"
	"testing"

	"github.com/guardkit/guard/internal/guardtest"
)

// TestDependencies keeps the package light (in the spirit of tailscale's deptest): no
// HTTP, no Prometheus, no third-party module but golang.org/x/sys, and of guard only its
// internal helpers.
func TestDependencies(t *testing.T) {
	guardtest.Forbid(t, func(p string) string {
		switch {
		case p == "net/http", strings.HasPrefix(p, "net/http/"), p == "expvar":
			return "no HTTP in the daemon kit"
		case guardtest.ThirdParty(p) && !strings.HasPrefix(p, "golang.org/x/sys/"):
			return "no third-party module but golang.org/x/sys"
		case guardtest.Own(p) && !strings.HasPrefix(p, guardtest.Module+"/internal/"):
			return "no other guard package"
		}
		return ""
	})
}
