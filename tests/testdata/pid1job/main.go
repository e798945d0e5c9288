// Command pid1job is the job of the container tests, run under guard as
// PID 1 of a FROM scratch image. "pid1job exit N" exits N at once. Plain
// "pid1job" leaves an orphan behind (a child that starts a grandchild and
// exits; the grandchild, reparented to PID 1, exits in turn and stays a
// zombie unless PID 1 reaps it), prints "ready" once the orphan has
// exited, and on SIGTERM prints "TERM" and exits 0.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "exit":
			n, _ := strconv.Atoi(os.Args[2])
			os.Exit(n)
		case "middle": // start the grandchild, say its PID, exit
			gc := exec.Command(os.Args[0], "orphan")
			gc.Stdin = os.Stdin // the grandchild exits when the job closes its end
			if err := gc.Start(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			fmt.Println(gc.Process.Pid)
			os.Exit(0)
		case "orphan": // exit once stdin is closed
			os.Stdin.Read(make([]byte, 1))
			os.Exit(0)
		}
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	r, w, err := os.Pipe()
	if err != nil {
		fail(err)
	}
	mid := exec.Command(os.Args[0], "middle")
	mid.Stdin = r
	out, err := mid.Output()
	if err != nil {
		fail(err)
	}
	r.Close()
	pid, _ := strconv.Atoi(string(out[:len(out)-1]))
	w.Close() // the orphan exits now
	// The orphan is gone (reaped by PID 1) once its PID is free.
	for syscall.Kill(pid, 0) == nil {
		var ts = syscall.Timespec{Nsec: 10e6}
		syscall.Nanosleep(&ts, nil)
	}
	fmt.Println("ready: orphan", pid, "reaped")
	<-term
	fmt.Println("TERM")
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
