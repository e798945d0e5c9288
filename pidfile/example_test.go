package pidfile_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/guardkit/guard/pidfile"
)

func ExampleParse() {
	pid, err := pidfile.Parse([]byte("1234\n"))
	fmt.Println(pid, err)

	for _, hostile := range []string{"-1\n", "0x10\n", "12 \n", ""} {
		_, err := pidfile.Parse([]byte(hostile))
		fmt.Println(err)
	}
	// Init, and a 32-bit -1: out of range (the message names pid_max).
	for _, hostile := range []string{"1\n", "4294967295\n"} {
		_, err := pidfile.Parse([]byte(hostile))
		fmt.Println(errors.Is(err, pidfile.ErrMalformed))
	}
	// Output:
	// 1234 <nil>
	// malformed pid "-1\n": unexpected '-' at byte 0; want only decimal digits
	// malformed pid "0x10\n": unexpected 'x' at byte 1; want only decimal digits
	// malformed pid "12 \n": unexpected ' ' at byte 2; want only decimal digits
	// malformed pid "": empty
	// true
	// true
}

func ExampleWrite() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "daemon.pid")

	f, err := pidfile.Write(path, os.Getpid(), 0o644)
	if err != nil {
		fmt.Println(err)
		return
	}
	info, err := pidfile.Inspect(path)
	fmt.Println(info.PID == os.Getpid(), info.State, err)
	_, err = info.Process("") // never this process itself
	fmt.Println(err != nil)
	fmt.Println(f.Remove(), f.Remove())
	// Output:
	// true running <nil>
	// true
	// <nil> <nil>
}

// Stopping the daemon a foreign PID file names, as "guard stop --pidfile"
// does: signal only a process tied to the file (and to its binary), through a
// pidfd, then wait for it to exit.
func ExampleInspect() {
	info, err := pidfile.Inspect("/run/sshd.pid")
	if err != nil {
		fmt.Println(err) // missing, unsafe or malformed
		return
	}
	if info.State != pidfile.Running {
		fmt.Println("not running:", info.State, info.Reason)
		return
	}
	p, err := info.Process("/usr/sbin/sshd")
	if err != nil {
		fmt.Println(err) // changed since, or not that binary
		return
	}
	defer p.Close()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fmt.Println(p.Wait(ctx))
}
