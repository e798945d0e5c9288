// Command guard runs a command while holding a single-instance lock, and
// tells and controls who holds it. See README.md and the contract for the
// command line, exit codes and files; the code is in internal/cli.
package main

import (
	"os"

	"github.com/guardkit/guard/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() { os.Exit(cli.Main(os.Args[1:], cli.Config{Version: version})) }
