//go:build linux

package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// reloadReport is what the reload helper reports: in HELPER_DIR/status.json while it
// runs, on stdout when it exits.
type reloadReport struct {
	Started, Ready bool
	HUPsSeen       int64  // SIGHUPs this process received (its own signal.Notify)
	Calls          int64  // Reload invocations
	Overlaps       int64  // invocations that found another one running
	Early          int64  // invocations before Ready
	Reopens        int64  // Reopen invocations
	LastGen        string // the generation the last reload read
	Config         string // the generation in force (failed reloads keep the old one)
	Total, Failed  uint64 // Control.ReloadStats at exit
	LastSuccess    time.Time
}

// helperReload is a daemon whose configuration is the file HELPER_DIR/gen: a reload reads
// it and fails if it starts with "fail". It becomes ready when HELPER_DIR/go-ready exists.
func helperReload() int {
	sigs := Catch()
	dir := os.Getenv("HELPER_DIR")
	var (
		mu                                            sync.Mutex
		rep                                           reloadReport
		inflight, calls, overlaps, early, reopens, hs atomic.Int64
		ready                                         atomic.Bool
	)
	save := func(update func(*reloadReport)) {
		mu.Lock()
		defer mu.Unlock()
		if update != nil {
			update(&rep)
		}
		rep.Calls, rep.Overlaps, rep.Early, rep.Reopens, rep.HUPsSeen = calls.Load(), overlaps.Load(), early.Load(), reopens.Load(), hs.Load()
		rep.Ready = ready.Load()
		_ = writeJSON(filepath.Join(dir, "status.json"), rep)
	}
	seen := make(chan os.Signal, 1)
	signal.Notify(seen, syscall.SIGHUP)
	go func() {
		for range seen {
			hs.Add(1)
			save(nil)
		}
	}()
	c := &Control{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	c.Reload = func(context.Context) error {
		if inflight.Add(1) > 1 {
			overlaps.Add(1)
		}
		defer inflight.Add(-1)
		calls.Add(1)
		if !ready.Load() {
			early.Add(1)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "gen"))
		gen := string(b)
		time.Sleep(20 * time.Millisecond) // SIGHUPs arrive during reloads and coalesce
		if strings.HasPrefix(gen, "fail") {
			save(func(r *reloadReport) { r.LastGen = gen })
			return fmt.Errorf("bad configuration %q", gen)
		}
		save(func(r *reloadReport) { r.LastGen, r.Config = gen, gen })
		return nil
	}
	c.Reopen = func() error { reopens.Add(1); save(nil); return nil }
	err := c.Run(context.Background(), sigs, func(ctx context.Context) error {
		save(func(r *reloadReport) { r.Started = true })
		for {
			if _, err := os.Stat(filepath.Join(dir, "go-ready")); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(10 * time.Millisecond):
			}
		}
		ready.Store(true)
		c.Ready()
		save(nil)
		<-ctx.Done()
		return nil
	})
	st := c.ReloadStats()
	save(func(r *reloadReport) { r.Total, r.Failed, r.LastSuccess = st.Total, st.Failed, st.LastSuccess })
	mu.Lock()
	json.NewEncoder(os.Stdout).Encode(rep)
	mu.Unlock()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	return ExitCode(err)
}

// helperStop is a daemon whose serve ignores the stop request: it writes
// HELPER_DIR/stopping when asked to stop and then hangs, so only a second signal or the
// stop timeout (HELPER_STOP_TIMEOUT) ends it.
func helperStop() int {
	sigs := Catch()
	dir := os.Getenv("HELPER_DIR")
	d, _ := time.ParseDuration(os.Getenv("HELPER_STOP_TIMEOUT"))
	c := &Control{StopTimeout: d, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	err := c.Run(context.Background(), sigs, func(ctx context.Context) error {
		c.Ready()
		_ = os.WriteFile(filepath.Join(dir, "started"), nil, 0o644)
		<-ctx.Done()
		_ = os.WriteFile(filepath.Join(dir, "stopping"), nil, 0o644)
		select {} // wedged
	})
	if errors.Is(err, ErrStopTimeout) {
		fmt.Fprintln(os.Stderr, "stop timed out")
	}
	return ExitCode(err)
}
