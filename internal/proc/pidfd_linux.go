package proc

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrChanged reports that the PID no longer names the process that was
// checked: it exited and the number was reused.
var ErrChanged = errors.New("process changed identity (PID reused)")

// Process is a handle on one process that cannot be redirected to another
// process by PID reuse: it holds a pidfd.
type Process struct {
	PID        int
	StartTicks uint64
	fd         int
}

// Open returns a handle on pid after proving, through a pidfd opened first and
// the start time read after, that pid still is the process that started at
// startTicks. It refuses PIDs outside 2..pid_max-1 and this process itself.
// The error matches ErrGone when the process is gone and ErrChanged when the
// PID now names a different process.
func Open(pid int, startTicks uint64) (*Process, error) {
	if !ValidPID(pid) {
		return nil, fmt.Errorf("pid %d: out of range", pid)
	}
	if pid == unix.Getpid() {
		return nil, fmt.Errorf("pid %d: refusing to act on this process itself", pid)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("pid %d: %w", pid, ErrGone)
		}
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	// The pidfd now pins the process; if /proc still shows the expected start
	// time, the pidfd refers to the process we checked.
	st, err := ReadStat(pid)
	if err == nil && st.StartTicks != startTicks {
		err = fmt.Errorf("pid %d: %w", pid, ErrChanged)
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	unix.CloseOnExec(fd)
	return &Process{PID: pid, StartTicks: startTicks, fd: fd}, nil
}

// Signal sends sig to the process through its pidfd. It never reaches another
// process, even if the PID has been reused since Open. A process that has
// exited yields an error matching ErrGone.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.fd < 0 {
		return errors.New("process handle closed")
	}
	err := unix.PidfdSendSignal(p.fd, sig, nil, 0)
	if errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal pid %d: %w", p.PID, ErrGone)
	}
	if err != nil {
		return fmt.Errorf("signal pid %d: %w", p.PID, err)
	}
	return nil
}

// Wait blocks until the process has exited (it may still be a zombie) or
// ctx is done. It returns nil when the process exited and ctx.Err()
// otherwise.
// Wait on a closed handle returns an error at once.
func (p *Process) Wait(ctx context.Context) error {
	if p.fd < 0 {
		return errors.New("process handle closed")
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		fds := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll pidfd %d: %w", p.PID, err)
		}
		if n > 0 && fds[0].Revents&unix.POLLNVAL != 0 {
			return fmt.Errorf("poll pidfd %d: invalid descriptor", p.PID)
		}
		if n > 0 {
			return nil
		}
	}
}

// Close releases the pidfd. It does not signal or wait for the process.
// Close is idempotent.
func (p *Process) Close() error {
	if p.fd < 0 {
		return nil
	}
	err := unix.Close(p.fd)
	p.fd = -1
	return err
}
