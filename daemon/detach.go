package daemon

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StageEnv is the marker variable that tells a re-executed program which stage of Detach
// it is: "1:N" for the intermediate process, "2:N" for the daemon, N being the number of
// extra files passed. Detach removes it from the daemon's environment, so programs the
// daemon starts do not see it. Never set it by hand.
const StageEnv = "GUARD_DAEMON_STAGE"

// DefaultUmask is the daemon's file mode creation mask when DetachOptions.Umask is zero:
// the same as start-stop-daemon's and systemd's default (UMask=0022).
const DefaultUmask = 0o022

// DefaultStartTimeout bounds the wait for readiness when DetachOptions.StartTimeout is
// zero; it is systemd's default TimeoutStartSec.
const DefaultStartTimeout = 90 * time.Second

// DetachOptions configures Detach and Start. Pass the same options in every stage (the
// program runs main again in each); only the starting process uses Output, ExtraFiles and
// StartTimeout, only the daemon uses Umask.
type DetachOptions struct {
	// Output is the file the daemon's stdout and stderr are appended to (created 0640,
	// less the umask, if missing). Empty means /dev/null. stdin is always /dev/null. A
	// relative path is resolved in the starting process's working directory. It is
	// opened without following a symbolic link that another user controls, and refused
	// unless it is a regular file of root's or ours in a directory that only root or we
	// can change (or a sticky one), like every directory on the way to it.
	Output string
	// Umask is the daemon's umask; zero means DefaultUmask. A daemon that really wants
	// mask 0 calls syscall.Umask(0) after Detach.
	Umask int
	// ExtraFiles are passed to the daemon, which finds them in Handle.Files (at
	// descriptors 3, 4, ... in order). Every other inherited descriptor above 2 is closed.
	// Open them only in the starting process (see Reexecuted); the re-executed stages
	// ignore this field.
	ExtraFiles []*os.File
	// StartTimeout bounds the wait for the daemon's readiness; zero means
	// DefaultStartTimeout, negative means wait forever.
	StartTimeout time.Duration
}

func (o DetachOptions) umask() int {
	if o.Umask != 0 {
		return o.Umask
	}
	return DefaultUmask
}

func (o DetachOptions) startTimeout() time.Duration {
	if o.StartTimeout != 0 {
		return o.StartTimeout
	}
	return DefaultStartTimeout
}

// Handle links a started program to whoever waits for it to be ready: the starting
// process when detached, systemd when $NOTIFY_SOCKET is set, or nobody.
type Handle struct {
	detached bool
	files    []*os.File
	output   string // absolute path of DetachOptions.Output; "" for /dev/null

	mu   sync.Mutex
	pipe *os.File // readiness pipe to the starting process; nil once reported
}

// Detached reports whether this process is the detached daemon (false in the foreground).
func (h *Handle) Detached() bool { return h.detached }

// Files returns the extra files: in the daemon, those the starting process passed in
// DetachOptions.ExtraFiles (now at descriptors 3, 4, ..., close-on-exec); in the
// foreground, DetachOptions.ExtraFiles itself.
func (h *Handle) Files() []*os.File { return h.files }

// ReopenOutput reopens DetachOptions.Output (append, created 0640 if missing, under the
// same rules) onto descriptors 1 and 2, so that after logrotate moved the file the
// daemon writes to a new one; call it on SIGUSR1. It does nothing in the foreground or when the output is
// /dev/null. On error the old descriptors stay.
func (h *Handle) ReopenOutput() error {
	if !h.detached || h.output == "" {
		return nil
	}
	return reopenOutput(h.output)
}

// Reexecuted reports whether this process is a stage re-executed by Detach that has not
// yet returned from it: main runs again in each stage, and code before Detach that
// opens DetachOptions.ExtraFiles (or takes locks) must run only in the starting process:
//
//	if !daemon.Reexecuted() {
//		opts.ExtraFiles = []*os.File{listener}
//	}
//
// In the daemon it is false again once Detach has returned (the marker is unset).
func Reexecuted() bool { return os.Getenv(StageEnv) != "" }

// ShouldDetach reports whether Detach would detach. It says no, with the reason, when a
// supervisor expects the program to stay in the foreground: systemd ($NOTIFY_SOCKET or
// $INVOCATION_ID set) or a container runtime (the program is PID 1).
func ShouldDetach() (ok bool, reason string) {
	switch {
	case os.Getenv(NotifySocketEnv) != "":
		return false, "under systemd ($NOTIFY_SOCKET is set)"
	case os.Getenv("INVOCATION_ID") != "":
		return false, "under systemd ($INVOCATION_ID is set)"
	case os.Getpid() == 1:
		return false, "running as PID 1"
	}
	return true, ""
}

// Detach makes the program a daemon without forking (APUE ch.13, by re-execution). Call
// it early in main, after Catch and before anything with side effects: main runs three
// times, and only the daemon gets past Detach. Resolve relative paths first: the daemon
// changes to "/" inside Detach.
//
// In the starting process (stage 0) Detach does not return: it re-executes the program
// (/proc/self/exe, same arguments) in a new session with stdin /dev/null and stdout and
// stderr on Output, and waits as Start does. It exits 0 once the daemon calls Ready;
// otherwise it prints the reason on stderr (the daemon's own text after Fail) and exits
// ExitCode of Start's error: the code given to Fail, or 1 when the daemon exited first,
// the start timed out, or the start was interrupted (SIGINT, SIGTERM, SIGHUP); in those
// cases the daemon's process group has been killed.
//
// The intermediate process (stage 1), a session leader, starts the daemon and exits at
// once, so the daemon (stage 2) is not a session leader and can never acquire a
// controlling terminal. In the daemon Detach sets the umask, changes to "/", leaves open
// only descriptors 0-2, the extra files and the readiness pipe (all close-on-exec above
// 2), unsets StageEnv, and returns a detached Handle: call Ready or Fail on it.
//
// When ShouldDetach says no, Detach changes nothing and returns a foreground Handle whose
// Ready notifies systemd. An error means the process was started with a malformed
// StageEnv or cannot become the daemon; the program should exit non-zero.
func Detach(opts DetachOptions) (*Handle, error) {
	stage, n, err := parseStage(os.Getenv(StageEnv))
	if err != nil {
		return nil, err
	}
	switch stage {
	case 1:
		runStage1(n) // does not return
	case 2:
		return becomeDaemon(n, opts)
	}
	if ok, _ := ShouldDetach(); !ok {
		return &Handle{files: opts.ExtraFiles}, nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	err = Start(ctx, opts)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, strings.TrimSuffix(err.Error(), "\n"))
	}
	os.Exit(ExitCode(err))
	panic("unreachable")
}

// parseStage reads StageEnv: stage 0 when unset.
func parseStage(v string) (stage, extra int, err error) {
	if v == "" {
		return 0, 0, nil
	}
	s, n, ok := strings.Cut(v, ":")
	stage, err1 := strconv.Atoi(s)
	extra, err2 := strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil || (stage != 1 && stage != 2) || extra < 0 || extra > 1000 {
		return 0, 0, fmt.Errorf("daemon: malformed %s=%q", StageEnv, v)
	}
	return stage, extra, nil
}

// withStage returns env with StageEnv set to value (any previous setting removed).
func withStage(env []string, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, StageEnv+"=") {
			out = append(out, kv)
		}
	}
	return append(out, StageEnv+"="+value)
}
