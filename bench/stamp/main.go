// Command stamp prints the CLOCK_MONOTONIC time, in nanoseconds, at which
// it started running Go code, then a space and its PID, and exits 0. It is the job of the take-over
// benchmark (scripts/bench.sh): the gap between a holder's release and the
// waiter's job start is stamp's number minus the holder's release instant.
//
// It imports only syscall, so the Go runtime's start-up is all that comes
// between exec and the reading; bench/wakegap measures that cost too (its
// "exec stamp" row) so it can be told apart from the waiter's own.
package main

import (
	"syscall"
	"unsafe"
)

// now is read at package initialisation, before main and before any other
// package's init (there is none besides the runtime's).
var now = monotonic()

func monotonic() int64 {
	var ts syscall.Timespec
	const clockMonotonic = 1
	syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Nano()
}

func main() {
	// strconv would do, but a fixed buffer keeps the binary minimal.
	var buf [48]byte
	i := len(buf) - 1
	buf[i] = '\n'
	i = digits(buf[:i], int64(syscall.Getpid()))
	i--
	buf[i] = ' '
	i = digits(buf[:i], now)
	syscall.Write(1, buf[i:])
}

// digits writes n in decimal at the end of b and returns where it starts.
func digits(b []byte, n int64) int {
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return i
		}
	}
}
