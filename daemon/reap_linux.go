package daemon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// canPeek: waitid(WNOWAIT) is available.
const canPeek = true

// setSubreaper makes this process a child subreaper (prctl(2) PR_SET_CHILD_SUBREAPER).
func setSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_SET_CHILD_SUBREAPER: %w", err)
	}
	return nil
}

// siginfoPIDOffset is where si_pid sits in siginfo_t: after three int32 fields, at the
// union, which is aligned like a pointer.
const siginfoPIDOffset = (12 + unsafe.Sizeof(uintptr(0)) - 1) &^ (unsafe.Sizeof(uintptr(0)) - 1)

// peekExited returns the PID of a child that has exited, without reaping it
// (waitid(P_ALL, WEXITED|WNOHANG|WNOWAIT)); 0 when none has, an error (ECHILD) when
// there are no children.
func peekExited() (int, error) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, err
		}
		raw := (*[unsafe.Sizeof(info)]byte)(unsafe.Pointer(&info))
		return int(int32(binary.NativeEndian.Uint32(raw[siginfoPIDOffset:]))), nil
	}
}

// reapPID reaps the exited child pid, reporting whether it did.
func reapPID(pid int) bool {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil && got == pid
	}
}
