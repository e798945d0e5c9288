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

// CLI is one run of the command line: where it prints, the environment it
// reads, the lock backend, and guard's own log lines. Nothing else in the
// package holds state: every command is a method of the CLI that runs it.
type CLI struct {
	stdout, stderr *os.File // the job inherits them, so files, not writers
	getenv         func(string) string
	environ        func() []string
	backend        Backend
	version        string
	parseOnly      bool // GUARD_PARSE_ONLY=1: check the command line, act on nothing
	log            *logger
	// describing, while flagsOf runs a command, receives the command's
	// flag set at its parse, complete with every flag the command
	// registers; the command then returns errDescribed without acting.
	describing func(*flagSet)
}

// New returns the CLI of this process: its stdio and environment, and the
// binary's Config.
func New(cfg Config) *CLI {
	return &CLI{
		stdout:    os.Stdout,
		stderr:    os.Stderr,
		getenv:    os.Getenv,
		environ:   os.Environ,
		backend:   cfg.Backend,
		version:   resolveVersion(cfg.Version),
		parseOnly: os.Getenv("GUARD_PARSE_ONLY") == "1",
		log:       newLogger(),
	}
}

// Main runs the command line args (without the program name) in this
// process and returns its exit code.
func Main(args []string, cfg Config) int {
	if code, ok := job.RunInit(); ok { // the init of a run's PID namespace
		return code
	}
	return New(cfg).Main(args)
}

// Main runs the command line args (without the program name) and returns
// the exit code.
func (c *CLI) Main(args []string) int {
	if c.backend == nil && c.wantsEtcd(args) {
		return c.report(c.handOver(args))
	}
	// A reader of guard's output that went away (guard status | head -0)
	// must not kill guard, nor, through Pdeathsig, a running job: a caught
	// SIGPIPE turns the write into an EPIPE error. Caught, not ignored, so
	// the job starts with SIGPIPE at its default.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	if err := checkFDLimit(); err != nil {
		return c.report(err)
	}
	return c.dispatch(args)
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
	run                 func(*CLI, []string) error
	hidden              bool // not in the usage (guard man)
}

// commands is the command line, in the order the usage, the man page and
// the completions list it. Their flags come from the commands themselves
// (flagsOf), so nothing here can go stale.
var commands []command

func init() {
	commands = []command{
		{name: "run", args: "[flags] -- COMMAND [ARG...]", summary: "run COMMAND while holding the lock", run: (*CLI).runCmd},
		{name: "status", args: "[flags]", summary: "who holds the lock (LSB exit codes)", run: (*CLI).statusCmd},
		{name: "stop", args: "[flags]", summary: "stop the holder: signal, wait, escalate", run: (*CLI).stopCmd},
		{name: "reload", args: "[flags]", summary: "send SIGHUP to the holder", run: (*CLI).reloadCmd},
		{name: "version", summary: "print the version and build information", run: (*CLI).versionCmd},
		{name: "help", args: "[COMMAND]", summary: "print the usage, or a command's flags", run: (*CLI).helpCmd},
		{name: "completion", args: "bash|zsh|fish", summary: "print a shell completion script", run: (*CLI).completionCmd},
		{name: "man", summary: "print the man page (roff)", run: (*CLI).manCmd, hidden: true},
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
func (c *CLI) usage() string {
	var b strings.Builder
	b.WriteString("usage:\n")
	nameW, argsW := 0, 0
	for _, cmd := range commands {
		if !cmd.hidden {
			nameW, argsW = max(nameW, len(cmd.name)), max(argsW, len(cmd.args))
		}
	}
	prog := c.progName()
	for _, cmd := range commands {
		if !cmd.hidden {
			fmt.Fprintf(&b, "  %s %-*s %-*s   %s\n", prog, nameW, cmd.name, argsW, cmd.args, cmd.summary)
		}
	}
	fmt.Fprintf(&b, "Run '%s help COMMAND' or '%s COMMAND --help' for the flags of a command; '%s --version' for the version.", prog, prog, prog)
	return b.String()
}

// progName is the binary's name in help texts: guard-etcd when it keeps
// the locks in a backend.
func (c *CLI) progName() string {
	if c.backend != nil {
		return etcdBinary
	}
	return "guard"
}

// dispatch runs one subcommand and returns the process exit code.
func (c *CLI) dispatch(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(c.stderr, c.usage())
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprintln(c.stdout, c.usage())
		return 0
	case "-version", "--version":
		args = append([]string{"version"}, args[1:]...)
	}
	cmd, ok := lookup(args[0])
	if !ok {
		fmt.Fprintf(c.stderr, "%s: unknown command %q (see '%s help')\n", c.progName(), args[0], c.progName())
		return exitUsage
	}
	return c.report(cmd.run(c, args[1:]))
}

// helpCmd prints the usage, or with a command's name that command's
// flags, as COMMAND --help does.
func (c *CLI) helpCmd(args []string) error {
	fs := c.newFlags("help", "[COMMAND]")
	if err := fs.parse(args); err != nil {
		return err
	}
	switch fs.NArg() {
	case 0:
		fmt.Fprintln(c.stdout, c.usage())
		return nil
	case 1:
	default:
		return usagef("help: want one COMMAND, got %q", fs.Args())
	}
	cmd, ok := lookup(fs.Arg(0))
	if !ok {
		return usagef("help: unknown command %q (one of %s)", fs.Arg(0), strings.Join(commandNames(), ", "))
	}
	c.flagsOf(cmd).printUsage(c.stdout)
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

// errParsed ends a command whose command line was checked in parse-only mode.
var errParsed = silent(0)
