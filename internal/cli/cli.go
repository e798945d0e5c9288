// Package cli is guard's command line: run, status, stop, reload and
// version, their flags, and the one mapping from errors to the contract's
// exit codes. cmd/guard is a few lines around Main; a binary with another
// lock backend reuses it. See README.md and the contract for the command
// line, exit codes and files.
package cli

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/guardkit/guard/job"
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
	version = resolveVersion(cfg.Version)
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

// command is one subcommand: its name, its arguments as the usage shows
// them, a one-line summary, and the function that runs it.
type command struct {
	name, args, summary string
	run                 func([]string) error
	hidden              bool // not in the usage (guard man)
}

// commands is the command line, in the order the usage, the man page and
// the completions list it. Their flags come from the commands themselves
// (flagsOf), so nothing here can go stale.
var commands []command

func init() {
	commands = []command{
		{name: "run", args: "[flags] -- COMMAND [ARG...]", summary: "run COMMAND while holding the lock", run: runCmd},
		{name: "status", args: "[flags]", summary: "who holds the lock (LSB exit codes)", run: statusCmd},
		{name: "stop", args: "[flags]", summary: "stop the holder: signal, wait, escalate", run: stopCmd},
		{name: "reload", args: "[flags]", summary: "send SIGHUP to the holder", run: reloadCmd},
		{name: "version", summary: "print the version and build information", run: versionCmd},
		{name: "help", args: "[COMMAND]", summary: "print the usage, or a command's flags", run: helpCmd},
		{name: "completion", args: "bash|zsh|fish", summary: "print a shell completion script", run: completionCmd},
		{name: "man", summary: "print the man page (roff)", run: manCmd, hidden: true},
	}
}

func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// usage is the top-level usage text.
func usage() string {
	var b strings.Builder
	b.WriteString("usage:\n")
	nameW, argsW := 0, 0
	for _, c := range commands {
		if !c.hidden {
			nameW, argsW = max(nameW, len(c.name)), max(argsW, len(c.args))
		}
	}
	for _, c := range commands {
		if !c.hidden {
			fmt.Fprintf(&b, "  %s %-*s %-*s   %s\n", progName(), nameW, c.name, argsW, c.args, c.summary)
		}
	}
	fmt.Fprintf(&b, "Run '%s help COMMAND' or '%s COMMAND --help' for the flags of a command; '%s --version' for the version.", progName(), progName(), progName())
	return b.String()
}

// progName is the binary's name in help texts: guard-etcd when it keeps
// the locks in a backend.
func progName() string {
	if backend != nil {
		return etcdBinary
	}
	return "guard"
}

// dispatch runs one subcommand and returns the process exit code.
func dispatch(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, usage())
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Println(usage())
		return 0
	case "-version", "--version":
		args = append([]string{"version"}, args[1:]...)
	}
	cmd, ok := lookup(args[0])
	if !ok {
		fmt.Fprintf(os.Stderr, "%s: unknown command %q (see '%s help')\n", progName(), args[0], progName())
		return exitUsage
	}
	return report(cmd.run(args[1:]))
}

// helpCmd prints the usage, or with a command's name that command's
// flags, as COMMAND --help does.
func helpCmd(args []string) error {
	fs := newFlags("help", "[COMMAND]")
	if err := fs.parse(args); err != nil {
		return err
	}
	switch fs.NArg() {
	case 0:
		fmt.Println(usage())
		return nil
	case 1:
	default:
		return usagef("help: want one COMMAND, got %q", fs.Args())
	}
	c, ok := lookup(fs.Arg(0))
	if !ok {
		return usagef("help: unknown command %q (one of %s)", fs.Arg(0), strings.Join(commandNames(), ", "))
	}
	f := flagsOf(c)
	f.printUsage(os.Stdout)
	return nil
}

// commandNames lists the commands the usage shows.
func commandNames() []string {
	var names []string
	for _, c := range commands {
		if !c.hidden {
			names = append(names, c.name)
		}
	}
	return names
}

// parseOnly is set by GUARD_PARSE_ONLY=1: every command checks its command
// line and exits 0 without acting, so deploy files can be checked against
// the real binary.
var parseOnly = os.Getenv("GUARD_PARSE_ONLY") == "1"

// errParsed ends a command whose command line was checked in parse-only mode.
var errParsed = silent(0)
