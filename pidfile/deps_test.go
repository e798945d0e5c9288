package pidfile

import (
	"strings"
	"testing"

	"github.com/guardkit/guard/internal/guardtest"
)

// TestImports keeps pidfile a leaf of the kit: the standard library,
// golang.org/x/sys/unix, guard/internal/proc and guard/internal/safepath only
// (no HTTP, no Prometheus, no other guard package).
func TestImports(t *testing.T) {
	guardtest.Forbid(t, func(p string) string {
		switch {
		case p == "net/http", strings.HasPrefix(p, "net/http/"):
			return "no HTTP"
		case p == "golang.org/x/sys/unix", p == "github.com/guardkit/guard/internal/proc", p == "github.com/guardkit/guard/internal/safepath":
		case guardtest.ThirdParty(p) || guardtest.Own(p):
			return "only the standard library, x/sys/unix, internal/proc and internal/safepath"
		}
		return ""
	})
}
