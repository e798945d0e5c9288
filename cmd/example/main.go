// Command example is a small daemon built by hand from guard's kit: the worked
// example for library users. Its job is trivial (log a configured message at a
// configured interval); everything around the job is what a well-behaved daemon
// does, each piece from one package:
//
//   - One instance (instance): it takes the lock at --lock before doing
//     anything and holds it for its whole life, with its record in the file, so
//     "guard status|reload|stop --lock PATH" work on it. A second instance exits
//     75 naming the holder.
//   - Detaching (daemon.Detach): with --detach it re-executes itself into the
//     background, logging to --output. The starting command exits 0 only once
//     the daemon is ready, or with the daemon's own error and exit code.
//   - Signals (daemon.Control): SIGHUP rereads --config; a file that cannot be
//     read or parsed is a failed reload (logged, counted) and the old
//     configuration stays. SIGTERM/SIGINT stop gracefully and release the
//     lock; a second one forces exit. SIGUSR1 reopens --output after logrotate.
//   - systemd (daemon): READY=1, RELOADING=1 and STOPPING=1 under
//     Type=notify or notify-reload, and WATCHDOG=1 from the main loop when
//     WatchdogSec= is set. Under systemd --detach stays in the foreground.
//   - Health (health): /livez, /readyz, /healthz and /metrics on --listen.
//     Ready means started up and holding the lock. The bound address is logged
//     ("serving health endpoints addr=..."), which helps with port 0.
//
// The configuration (--config, reread on SIGHUP) is "key = value" lines;
// lines starting with '#' are comments. message is the text to log, interval
// a Go duration > 0 ("500ms", "1m"). Keys a file leaves out keep their built-in
// values (message "hello from example", interval 1s), which are all there is
// without --config. Unknown or repeated keys and bad values are errors: at
// start-up exit 78, on SIGHUP a failed reload.
//
// Policy on a lost lock: if the lock file is deleted or replaced underneath,
// the lock no longer excludes anyone (a new instance would lock the new file).
// example then reports not ready, logs it and exits 1, so that a supervisor
// (systemd Restart=on-failure, a Kubernetes restart) starts it again, and the
// new process either takes the lock afresh or finds it busy. guard run, in
// contrast, re-locks the new file in place; exiting is the simpler policy.
//
// Usage:
//
//	example --lock PATH [--config FILE] [--listen ADDR] [--name NAME] [--detach [--output FILE]]
//
// Exit codes: 0 stopped by SIGTERM/SIGINT; 1 lost the lock; 64 usage; 70
// internal (--listen cannot bind, say); 73 cannot create the lock file; 75 lock
// busy; 77 permission denied; 78 invalid configuration or unsafe lock path.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/guardkit/guard/daemon"
	"github.com/guardkit/guard/instance"
)

// options are the command-line flags.
type options struct {
	config string // --config: the configuration file; "" for the built-in one
	lock   string // --lock: the lock file
	listen string // --listen: health endpoints address; "" for none
	name   string // --name: job name in the lock record
	detach bool   // --detach: run in the background
	output string // --output: the detached daemon's log file
}

// errUsage is matched by command-line mistakes.
var errUsage = errors.New("usage error")

func usagef(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, a...)...)
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("example", flag.ContinueOnError)
	fs.StringVar(&o.config, "config", "", "configuration `FILE` (default: built-in)")
	fs.StringVar(&o.lock, "lock", "", "lock file `PATH` (required)")
	fs.StringVar(&o.listen, "listen", "", "serve health endpoints on `ADDR` (host:port)")
	fs.StringVar(&o.name, "name", "", "job `NAME` in the lock record (default: lock file name without .lock)")
	fs.BoolVar(&o.detach, "detach", false, "run in the background; return once ready")
	fs.StringVar(&o.output, "output", "", "with --detach: append logs to `FILE` (default /dev/null)")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %w", errUsage, err)
	}
	switch {
	case fs.NArg() > 0:
		return o, usagef("unexpected argument %q", fs.Arg(0))
	case o.lock == "":
		return o, usagef("--lock PATH is required")
	case o.output != "" && !o.detach:
		return o, usagef("--output goes with --detach")
	}
	// The daemon changes to "/" when it detaches: resolve relative paths now.
	var err error
	if o.lock, err = filepath.Abs(o.lock); err != nil {
		return o, err
	}
	if o.config != "" {
		if o.config, err = filepath.Abs(o.config); err != nil {
			return o, err
		}
	}
	if o.name == "" {
		o.name = strings.TrimSuffix(filepath.Base(o.lock), ".lock")
	}
	return o, nil
}

func main() {
	sigs := daemon.Catch() // first thing: no signal kills us half-started
	os.Exit(run(sigs, os.Args[1:]))
}

// run is main with an exit code. With --detach it runs three times, once per
// stage of daemon.Detach; only the daemon gets past Detach.
func run(sigs *daemon.Signals, args []string) int {
	o, err := parseFlags(args)
	if err == nil {
		// Check the configuration before detaching, so that the starting
		// command reports a bad file itself. The daemon reads it again.
		_, err = loadConfig(o.config)
	}
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "example:", err)
		}
		return exitCode(err)
	}
	var h *daemon.Handle // nil in the foreground: readiness goes to systemd alone
	if o.detach {
		if h, err = daemon.Detach(daemon.DetachOptions{Output: o.output}); err != nil {
			fmt.Fprintln(os.Stderr, "example:", err)
			return exitCode(err)
		}
	}
	log := slog.New(daemon.NewStderrHandler(nil)) // to --output once detached
	slog.SetDefault(log)                          // the log package too (http.Server errors)
	err = newProgram(o, log).run(sigs, h)
	if err != nil {
		log.Error("exiting", "err", err, "code", exitCode(err))
	}
	return exitCode(err)
}

// exitCode maps an error to the exit code; it is the only place that does.
func exitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
		return 64
	case errors.Is(err, instance.ErrLost):
		return 1
	case errors.Is(err, instance.ErrHeld):
		return 75
	case errors.Is(err, errConfig), errors.Is(err, instance.ErrUnsafe):
		return 78
	case errors.Is(err, fs.ErrPermission):
		return 77
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.EROFS):
		return 73 // the lock file's directory is missing or read-only
	}
	return 70
}
