package cli

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/guardkit/guard/daemon"
	"github.com/guardkit/guard/instance"
	"github.com/guardkit/guard/internal/safepath"
	"github.com/guardkit/guard/pidfile"
)

// Exit codes of the contract.
const (
	exitUsage       = 64
	exitLost        = 69 // the lock was lost and the job stopped
	exitUnavailable = 69 // the lock's backend cannot be reached or is not installed
	exitInternal    = 70
	exitCantCreate  = 73
	exitBusy        = 75
	exitPerm        = 77
	exitUnsafe      = 78
)

// exitf returns an error that exits with code after printing one line. The
// code travels as a *daemon.ExitError, the kit's one exit-code error, which
// a detached run also hands to its starting process.
func exitf(code int, format string, a ...any) error {
	return daemon.WithExitCode(code, fmt.Errorf(format, a...))
}

// errPrinted is the error of a command that has printed what it had to say.
var errPrinted = errors.New("")

// silent exits with code and prints nothing (the command printed already).
func silent(code int) error { return daemon.WithExitCode(code, errPrinted) }

// usageErr marks a command-line mistake.
type usageErr struct{ msg string }

func (e *usageErr) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageErr{fmt.Sprintf(format, a...)} }

// codeOf maps an error to the contract's exit code. It is the only place
// that does.
func codeOf(err error) int {
	var ee *daemon.ExitError
	var ue *usageErr
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.Code
	case errors.As(err, &ue), errors.Is(err, flag.ErrHelp):
		return exitUsage
	case errors.Is(err, instance.ErrHeld):
		return exitBusy
	case errors.Is(err, instance.ErrUnavailable):
		return exitUnavailable
	case errors.Is(err, instance.ErrUnsafe), errors.Is(err, pidfile.ErrUnsafe), errors.Is(err, pidfile.ErrMalformed),
		errors.Is(err, safepath.ErrUnsafe):
		return exitUnsafe
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EPERM):
		return exitPerm
	case errors.Is(err, syscall.EROFS), errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR),
		errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return exitCantCreate
	}
	return exitInternal
}

// report prints err as one line on stderr and returns its exit code.
func (c *CLI) report(err error) int {
	code := codeOf(err)
	if err == nil || errors.Is(err, flag.ErrHelp) || errors.Is(err, errPrinted) {
		return code
	}
	c.log.error(err.Error())
	return code
}
