// Command guard-etcd is guard with its locks in etcd: the same command line
// (run, status, version; stop and reload act on the holder's own host for
// now), with --etcd ENDPOINTS or GUARD_ETCD_ENDPOINTS naming the cluster.
// Plain guard hands any command line that asks for etcd over to it, so
// that every local cron run does not pay for etcd's client. See
// guard/etcd/lock for the lease, its deadline and the fencing token.
package main

import (
	"os"

	"github.com/guardkit/guard/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.Config{Version: version, Backend: &backend{}}))
}
