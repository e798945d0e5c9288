// Command guard runs a command while holding a single-instance lock, and
// tells and controls who holds it. See README.md and the contract for the
// command line, exit codes and files.
package main

import (
	"fmt"
	"os"
)

func main() {
	os.Exit(dispatch(os.Args[1:]))
}

const usage = `usage:
  guard run    [flags] -- COMMAND [ARG...]   run COMMAND while holding the lock
  guard status [flags]                       who holds the lock (LSB exit codes)
  guard stop   [flags]                       stop the holder: signal, wait, escalate
  guard reload [flags]                       send SIGHUP to the holder
  guard version
Run 'guard COMMAND -h' for the flags of a command.`

// dispatch runs one subcommand and returns the process exit code.
func dispatch(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, usage)
		return exitUsage
	}
	cmds := map[string]func([]string) error{
		"run":     runCmd,
		"status":  statusCmd,
		"stop":    stopCmd,
		"reload":  reloadCmd,
		"version": versionCmd,
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			fmt.Println(usage)
			return 0
		}
		fmt.Fprintf(os.Stderr, "guard: unknown command %q\n%s\n", args[0], usage)
		return exitUsage
	}
	return report(cmd(args[1:]))
}

// parseOnly is set by GUARD_PARSE_ONLY=1: every command checks its command
// line and exits 0 without acting, so deploy files can be checked against
// the real binary.
var parseOnly = os.Getenv("GUARD_PARSE_ONLY") == "1"

// errParsed ends a command whose command line was checked in parse-only mode.
var errParsed = silent(0)
