//go:build linux

package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/guardkit/guard/daemon"
)

func ExampleExitCode() {
	busy := daemon.WithExitCode(75, errors.New("lock /run/guard/backup.lock busy: held by pid 4242"))
	fmt.Println(daemon.ExitCode(busy), busy)
	fmt.Println(daemon.ExitCode(errors.New("boom")), daemon.ExitCode(nil))
	// Output:
	// 75 lock /run/guard/backup.lock busy: held by pid 4242
	// 1 0
}

func ExampleControl_ReloadStats() {
	c := daemon.Control{Logger: slog.New(slog.DiscardHandler)} // otherwise a usable zero value
	c.RecordReload(nil)
	c.RecordReload(errors.New("bad config"))
	s := c.ReloadStats()
	fmt.Println(s.Total, s.Failed, !s.LastSuccess.IsZero())
	// Output: 2 1 true
}

// A daemon built from the kit: detached unless systemd or a container runtime runs it,
// ready only once set up, reloading on SIGHUP, stopping gracefully on SIGTERM.
func ExampleDetach() {
	sigs := daemon.Catch() // first: no signal kills us during start-up
	h, err := daemon.Detach(daemon.DetachOptions{Output: "/var/log/example.log"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(70)
	}
	// Only the daemon (or a foreground process under systemd/PID 1) gets here.
	logger := slog.New(daemon.NewStderrHandler(nil))
	ctl := &daemon.Control{
		Handle: h,
		Logger: logger,
		Reload: func(ctx context.Context) error { return nil }, // re-read the config
		Reopen: h.ReopenOutput,
	}
	err = ctl.Run(context.Background(), sigs, func(ctx context.Context) error {
		if err := setUp(); err != nil {
			h.Fail(daemon.WithExitCode(75, err)) // the starter prints err and exits 75
			return err
		}
		ctl.Ready() // the starter exits 0; systemd gets READY=1
		go daemon.Watchdog(ctx)
		<-ctx.Done() // serve until SIGTERM
		return nil
	})
	os.Exit(daemon.ExitCode(err))
}

func setUp() error { return nil }
