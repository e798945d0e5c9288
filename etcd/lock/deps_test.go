package etcdlock

import (
	"strings"
	"testing"

	"github.com/guardkit/guard/internal/guardtest"
)

// TestDependencies: the lock neither imports guard's job, health or daemon
// (DESIGN.md's arrows), nor HTTP or Prometheus, nor etcd's concurrency
// package, whose Session keeps leases alive with a deadline counted from
// the receive time of each answer.
func TestDependencies(t *testing.T) {
	guardtest.Forbid(t, func(p string) string {
		switch {
		case p == "net/http", strings.HasPrefix(p, "net/http/"), p == "expvar", strings.Contains(p, "prometheus"):
			return "no HTTP or Prometheus"
		case strings.HasPrefix(p, "go.etcd.io/etcd/client/v3/concurrency"):
			return "its Session counts the lease's deadline from the receive time of each answer"
		case strings.HasPrefix(p, "go.etcd.io/etcd/server/"):
			return "the server is for tests only"
		case p == "github.com/guardkit/guard/job", p == "github.com/guardkit/guard/health", p == "github.com/guardkit/guard/daemon":
			return "the lock imports neither job, health nor daemon"
		}
		return ""
	})
}
