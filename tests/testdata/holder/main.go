// Command holder takes a guard lock with the instance package and keeps it
// until killed, ignoring SIGTERM: a stubborn holder for `guard stop` tests.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/guardkit/guard/instance"
)

func main() {
	signal.Ignore(syscall.SIGTERM, syscall.SIGHUP)
	l, err := instance.New(instance.Options{Path: os.Args[1], Name: "holder"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := l.Lock(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("locked")
	select {}
}
