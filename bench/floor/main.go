// Command floor is the dependency floor of guard run: the least a Go program
// linking guard's own dependencies (github.com/gofrs/flock,
// golang.org/x/sys/unix) can do to run a command under a lock. It takes an
// exclusive flock(2) on LOCK through gofrs/flock, runs COMMAND with os/exec
// in its own process group with PR_SET_PDEATHSIG (as guard does), waits for
// it and exits with its status. No record, no safety checks, no signal
// forwarding: guard run cannot be faster than this.
//
//	floor [-block | -poll=DELAY] LOCK COMMAND [ARG...]
//
// Without a mode it does not wait: a busy lock exits 75, like guard run.
// -block waits in flock(2) (gofrs/flock Lock), waking on release.
// -poll=DELAY polls with gofrs/flock TryLockContext every DELAY, the usual
// way to wait with that package; it writes "busy" to stderr after the first
// failed attempt, so a benchmark knows the polling has begun.
//
// It is used only by scripts/bench.sh.
package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/gofrs/flock"
	"golang.org/x/sys/unix"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	mode := ""
	if len(args) > 0 && strings.HasPrefix(args[0], "-") {
		mode, args = args[0], args[1:]
	}
	if len(args) < 2 {
		os.Stderr.WriteString("usage: floor [-block | -poll=DELAY] LOCK COMMAND [ARG...]\n")
		return 64
	}
	fl := flock.New(args[0],
		flock.SetFlag(os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW),
		flock.SetPermissions(0o644))
	ok, err := lock(fl, mode)
	if err != nil {
		os.Stderr.WriteString("floor: " + err.Error() + "\n")
		return 70
	}
	if !ok {
		return 75
	}
	cmd := exec.Command(args[1], args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = cmd.Run()
	if cmd.ProcessState == nil {
		os.Stderr.WriteString("floor: " + err.Error() + "\n")
		return 127
	}
	return cmd.ProcessState.ExitCode()
}

// lock takes the lock as mode says.
func lock(fl *flock.Flock, mode string) (bool, error) {
	switch {
	case mode == "":
		return fl.TryLock()
	case mode == "-block":
		return true, fl.Lock()
	case strings.HasPrefix(mode, "-poll="):
		delay, err := time.ParseDuration(strings.TrimPrefix(mode, "-poll="))
		if err != nil {
			return false, err
		}
		if ok, err := fl.TryLock(); ok || err != nil {
			return ok, err
		}
		os.Stderr.WriteString("busy\n")
		return fl.TryLockContext(context.Background(), delay)
	}
	return false, os.ErrInvalid
}
