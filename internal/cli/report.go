package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/health"
	"github.com/guardkit/guard/instance"
	rpt "github.com/guardkit/guard/report"
)

// pingURLEnv is --ping's URL when the flag is absent. The job does not
// inherit it.
const pingURLEnv = "GUARD_PING_URL"

// reportOpts are guard run's flags for cron jobs: how a run is reported
// (--ping, --push, --quiet-success) and when it runs (--jitter, --retries,
// --retry-delay, --min-interval).
type reportOpts struct {
	ping         string
	pingSkipped  bool
	quietSuccess bool
	push         string
	jitter       time.Duration
	retries      int
	retryDelay   time.Duration
	minInterval  time.Duration

	pingURL, pushURL *url.URL // checked
}

func (o *reportOpts) register(fs *flag.FlagSet) {
	fs.StringVar(&o.ping, "ping", "", "ping `URL`/start when the job starts and URL/<exit status> when it ends, the output's tail as the body (healthchecks.io protocol); the URL is never logged; default $GUARD_PING_URL, which ps does not show")
	fs.BoolVar(&o.pingSkipped, "ping-skipped", false, "with --ping: a run skipped because the lock is busy pings URL/<--conflict-exit code> (default: no ping)")
	fs.BoolVar(&o.quietSuccess, "quiet-success", false, "capture the job's output; print it, after a one-line header, only if the run fails, times out or is killed (chronic)")
	fs.StringVar(&o.push, "push", "", "push the run's gauges to the Prometheus Pushgateway at `URL` when the job starts and ends (group job=NAME, instance=$GUARD_PUSH_INSTANCE or the host name)")
	fs.Var(durationFlag{&o.jitter}, "jitter", "sleep a random time up to `DURATION` before taking the lock (spreads a fleet's cron runs)")
	fs.IntVar(&o.retries, "retries", 0, "run a failed job again up to `N` times, the lock held throughout, all within --timeout")
	fs.Var(durationFlag{&o.retryDelay}, "retry-delay", "`DURATION` between a failed attempt and the next (default 0)")
	fs.Var(durationFlag{&o.minInterval}, "min-interval", "skip the run (exit 0, counted as skipped) if the job succeeded under this lock less than `DURATION` ago")
}

// check validates the flags; its errors never show a URL (it may hold a
// secret).
func (o *reportOpts) check(detach bool) error {
	var err error
	if o.ping != "" {
		if o.pingURL, err = rpt.CheckURL(o.ping); err != nil {
			return usagef("run: --ping: %v (the URL is not shown: it may hold a secret)", err)
		}
	}
	if o.push != "" {
		if o.pushURL, err = rpt.CheckURL(o.push); err != nil {
			return usagef("run: --push: %v (the URL is not shown: it may hold a secret)", err)
		}
	}
	switch {
	case o.pingSkipped && o.ping == "":
		return usagef("run: --ping-skipped goes with --ping")
	case o.retries < 0:
		return usagef("run: --retries %d: want 0 or more", o.retries)
	case o.retryDelay > 0 && o.retries == 0:
		return usagef("run: --retry-delay goes with --retries")
	case o.quietSuccess && detach:
		return usagef("run: --quiet-success does not go with --detach (a detached job's output goes to --output)")
	}
	return nil
}

// sleepJitter sleeps a random time in [0, --jitter) before the lock is
// taken. TERM or INT ends it: guard exits 128+signal.
func (o *runOpts) sleepJitter(sigs <-chan os.Signal) error {
	if o.jitter <= 0 {
		return nil
	}
	d := rand.N(o.jitter)
	o.sd.sleeping(d)
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return nil
		case s := <-sigs:
			if sig, ok := s.(syscall.Signal); ok && (sig == syscall.SIGTERM || sig == syscall.SIGINT) {
				return exitf(128+int(sig), "%s during --jitter; the job did not run", unix.SignalName(sig))
			}
		}
	}
}

// clockSkew is how far in the future a record's last success may be before
// it is not believed (the clock went back, or the record is from a host
// whose clock runs ahead).
const clockSkew = time.Minute

// notDue reports whether --min-interval says this run is not due: the
// lock's record says the job succeeded less than --min-interval ago.
func (o *runOpts) notDue(le instance.Lease, path string) bool {
	if o.minInterval <= 0 {
		return false
	}
	last := le.Record().LastSuccess
	if last.IsZero() {
		return false
	}
	age := time.Since(last)
	if age < -clockSkew {
		o.c.logf("%s: the record's last success (%s) is in the future; running anyway", path, last.UTC().Format(time.RFC3339))
		return false
	}
	return age < o.minInterval
}

// reporter reports one run of guard run: the captured output, the pings
// and the pushes. Made by newReporter; without report flags it only hands
// the job guard's own stdout and stderr.
type reporter struct {
	c      *CLI
	opts   *reportOpts
	name   string
	pinger *rpt.Pinger
	pusher *rpt.Pusher
	out    *rpt.Capture // nil: the job's output is not captured
	began  time.Time    // when the first attempt started

	readers   *sync.WaitGroup // copying this attempt's output into out; one per attempt, so a drain that gave up on a leftover never shares it with the next
	startPush chan struct{}   // closed once the start push is done
	pushFails int
	mu        sync.Mutex
}

func (c *CLI) newReporter(o *reportOpts, name string, detach bool) *reporter {
	r := &reporter{c: c, opts: o, name: name}
	if o.pingURL != nil {
		r.pinger = rpt.NewPinger(o.pingURL, c.logf)
	}
	if o.pushURL != nil {
		inst := c.getenv("GUARD_PUSH_INSTANCE")
		if inst == "" {
			inst, _ = os.Hostname()
		}
		r.pusher = &rpt.Pusher{URL: o.pushURL, Job: name, Instance: inst}
	}
	if !detach && (o.quietSuccess || r.pinger != nil) {
		r.out = new(rpt.Capture)
	}
	return r
}

// outputs gives the job its stdout and stderr: with --quiet-success one pipe
// for both, copied into the capture only (so their order is kept); with
// --ping, copied through to guard's own and into the capture: one pipe for
// both when guard's stdout and stderr are the same file (cron's mail pipe, a
// terminal), so the order is exact there too, else one pipe each. The write
// ends are for the job alone: closeAfterStart closes guard's.
func (r *reporter) outputs() (stdout, stderr *os.File, closeAfterStart func(), err error) {
	if r.out == nil {
		return r.c.stdout, r.c.stderr, func() {}, nil
	}
	r.readers = new(sync.WaitGroup)
	if r.opts.quietSuccess || sameFile(r.c.stdout, r.c.stderr) {
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, nil, nil, err
		}
		also := io.Writer(r.c.stdout)
		if r.opts.quietSuccess {
			also = io.Discard
		}
		r.copy(pr, also)
		return pw, pw, func() { pw.Close() }, nil
	}
	opr, opw, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, err
	}
	epr, epw, err := os.Pipe()
	if err != nil {
		opr.Close()
		opw.Close()
		return nil, nil, nil, err
	}
	r.copy(opr, r.c.stdout)
	r.copy(epr, r.c.stderr)
	return opw, epw, func() { opw.Close(); epw.Close() }, nil
}

// sameFile reports whether a and b are the same open file.
func sameFile(a, b *os.File) bool {
	fa, erra := a.Stat()
	fb, errb := b.Stat()
	return erra == nil && errb == nil && os.SameFile(fa, fb)
}

// copy reads the job's output from pr into the capture and to also, until
// the last writer closes it.
//
// When guard's own output fails (its reader went away: guard run ... | head
// -1), copy stops reading and closes the pipe, so the job's next write gets
// SIGPIPE or EPIPE as it would without guard in between, instead of
// running on with nobody reading.
func (r *reporter) copy(pr *os.File, also io.Writer) {
	wg := r.readers
	wg.Go(func() {
		defer pr.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := pr.Read(buf)
			if n > 0 {
				r.out.Write(buf[:n])
				if _, werr := also.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
}

// drainWait bounds the wait for the job's output after its end: a process
// left behind (--leftovers ignore) may hold the pipe open.
const drainWait = 2 * time.Second

// drain waits until the job's output is read to its end, for at most
// drainWait.
func (r *reporter) drain() {
	if r.readers == nil {
		return
	}
	wg, done := r.readers, make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainWait):
		r.c.logf("%s: job output still open %v after the job ended; reporting what was read", r.name, drainWait)
	}
}

// started reports the first attempt's start, in the background: the job is
// already running and is not kept waiting.
func (r *reporter) started(at time.Time) {
	if !r.began.IsZero() {
		return // a retry: one start per run
	}
	r.began = at
	if r.pinger != nil {
		r.pinger.Start()
	}
	if r.pusher != nil {
		r.startPush = make(chan struct{})
		go func() {
			defer close(r.startPush)
			if err := r.pusher.Started(context.Background(), at); err != nil {
				r.pushFailed(err)
			}
		}()
	}
}

func (r *reporter) pushFailed(err error) {
	r.c.logf("--push: %v", err)
	r.mu.Lock()
	r.pushFails++
	r.mu.Unlock()
}

// note is a line of guard's about the run (a retry): with --quiet-success
// it goes into the captured output, printed only if the run fails.
func (r *reporter) note(format string, a ...any) {
	if r.opts.quietSuccess && r.out != nil {
		fmt.Fprintf(r.out, "guard: "+format+"\n", a...)
		return
	}
	r.c.logf(format, a...)
}

// ended reports the run's end, after the lock was released: the captured
// output if the run failed (--quiet-success), the end ping and the end push,
// side by side. It fills in run's failure counts for the textfile.
func (r *reporter) ended(run *health.JobRun) {
	if r.out != nil {
		r.drain()
	}
	failed := run.Result != health.ResultSuccess
	// A job that could not start has nothing to show: guard's line says why.
	if r.opts.quietSuccess && failed && r.out != nil && !r.began.IsZero() {
		end := run.Finished // not now: the drain may have waited for a leftover
		if end.IsZero() {
			end = time.Now()
		}
		fmt.Fprintf(r.c.stdout, "guard: %s: %s, exit code %d, after %v; the job's output:\n",
			r.name, run.Result, run.ExitCode, end.Sub(r.began).Round(time.Millisecond))
		r.out.WriteTo(r.c.stdout) //nolint:errcheck // nowhere else to say it
	}
	var wg sync.WaitGroup
	if r.pinger != nil {
		var body []byte
		if r.out != nil {
			body = r.out.Tail(rpt.PingBodySize)
		}
		wg.Go(func() { r.pinger.End(run.ExitCode, body) })
	}
	if r.pusher != nil && !r.began.IsZero() {
		wg.Go(func() {
			// One Budget for the end, the wait for the start push included.
			ctx, cancel := context.WithTimeout(context.Background(), rpt.Budget)
			defer cancel()
			select {
			case <-r.startPush:
			case <-ctx.Done():
				r.pushFailed(errors.New("the start push still had no answer; end push not sent"))
				return
			}
			end := run.Finished
			if end.IsZero() {
				end = time.Now()
			}
			if err := r.pusher.Ended(ctx, !failed, run.ExitCode, run.Duration, end); err != nil {
				r.pushFailed(err)
			}
		})
	}
	wg.Wait()
	r.count(run)
}

// skipped reports a run skipped because the lock was busy: with
// --ping-skipped, an end ping with guard's exit status and the reason.
func (r *reporter) skipped(run *health.JobRun, code int, why error) {
	if r.pinger != nil && r.opts.pingSkipped {
		r.pinger.End(code, []byte(why.Error()+"\n"))
	}
	r.count(run)
}

func (r *reporter) count(run *health.JobRun) {
	if r.pinger != nil {
		run.PingFailures = r.pinger.Failures()
	}
	r.mu.Lock()
	run.PushFailures = r.pushFails
	r.mu.Unlock()
}
