package instance_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/guardkit/guard/instance"
)

// A program that must run alone takes the lock, and a second attempt sees
// who holds it.
func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "backup.lock")

	l, err := instance.New(instance.Options{Path: path, Name: "backup"})
	if err != nil {
		panic(err)
	}
	lease, err := l.TryLock(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println("holding the lock; token > 0:", lease.Token() > 0)

	// Another instance (here, a second Lock on the same path) finds it busy.
	other, _ := instance.New(instance.Options{Path: path})
	_, err = other.TryLock(context.Background())
	var held *instance.HeldError
	if errors.As(err, &held) {
		fmt.Println("busy; held by this process:", held.Holder.Record.PID == os.Getpid())
	}

	lease.Release()
	h, _ := instance.Inspect(path)
	fmt.Println("after release:", h.State)
	// Output:
	// holding the lock; token > 0: true
	// busy; held by this process: true
	// after release: free
}
