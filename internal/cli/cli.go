// Package cli is guard's command line: run, status, stop, reload and
// version, their flags, and the one mapping from errors to the contract's
// exit codes. cmd/guard is a few lines around Main; a binary with another
// lock backend reuses it. See README.md and the contract for the command
// line, exit codes and files.
package cli

import (
	"fmt"
	"github.com/guardkit/guard/job"
	"os"
	"os/signal"
	"syscall"
)

// Config is what the binary around Main provides.
type Config struct {
	// Version is the binary's version, as stamped at build time.
	Version string
	// Backend keeps the locks; nil means local lock files, and a command
	// line that asks for etcd is handed over to guard-etcd.
	Backend Backend
}

// Main runs the command line args (without the program name) and returns
// the process exit code.
func Main(args []string, cfg Config) int {
	if code, ok := job.RunInit(); ok { // the init of a run's PID namespace
		return code
	}
	if cfg.Version != "" {
		version = cfg.Version
	}
	backend = cfg.Backend
	if backend == nil && wantsEtcd(args) {
		return report(handOver(args))
	}
	// A reader of guard's output that went away (guard status | head -0)
	// must not kill guard, nor, through Pdeathsig, a running job: a caught
	// SIGPIPE turns the write into an EPIPE error. Caught, not ignored, so
	// the job starts with SIGPIPE at its default.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	if err := checkFDLimit(); err != nil {
		return report(err)
	}
	return dispatch(args)
}

// minFDs is the fewest open files guard works with: stdio, the Go
// runtime's poller, the lock's directory and two descriptors on the lock
// file, the job's copy, /proc reads and pidfds.
const minFDs = 16

// checkFDLimit refuses, with one line, a descriptor limit too low to run
// (ulimit -n 6), which would otherwise end in a Go runtime crash at the
// first file opened. Go has already raised the soft limit to the hard one.
func checkFDLimit() error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur >= minFDs {
		return nil
	}
	return exitf(exitInternal, "the open-file limit is %d (ulimit -n); guard needs at least %d", rl.Cur, minFDs)
}

// runSignals are caught by guard run from its first instruction: TERM and
// INT stop the job's tree, the others are forwarded to it.
var runSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP,
	syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

func notifyRunSignals(c chan<- os.Signal) { signal.Notify(c, runSignals...) }

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
