package tests

// --quiet-success beside chronic(1), huge output, --push to a real
// Pushgateway, the textfile at start through node_exporter, and the cron
// controls --jitter, --retries and --min-interval.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/guardtest"
)

// --quiet-success shows what chronic shows: nothing for a success, every
// line and the exit code for a failure; guard keeps the order of stdout and
// stderr lines (chronic prints stdout, then stderr) and adds a header.
func TestQuietSuccessLikeChronic(t *testing.T) {
	chronic := guardtest.RequirePeer(t, "chronic", "moreutils")
	lock := filepath.Join(lockDir(t), "q.lock")
	both := func(job string) (g, c result) {
		g = guard(t, "run", "--lock", lock, "--name", "quiet", "--quiet-success", "--", "sh", "-c", job)
		c = run(t, chronic, "sh", "-c", job)
		return g, c
	}
	g, c := both("echo o1; echo e1 >&2; echo o2")
	if g.code != 0 || c.code != 0 || g.stdout+g.stderr != "" || c.stdout+c.stderr != "" {
		t.Errorf("success: guard %d %q %q, chronic %d %q %q: want 0 and nothing", g.code, g.stdout, g.stderr, c.code, c.stdout, c.stderr)
	}
	job := "echo o1; echo e1 >&2; echo o2; echo e2 >&2; exit 4"
	g, c = both(job)
	if g.code != 4 || c.code != 4 {
		t.Errorf("failure: exit guard %d, chronic %d, want 4", g.code, c.code)
	}
	lines := func(s string) []string { l := strings.Split(strings.TrimSpace(s), "\n"); sort.Strings(l); return l }
	header, out, _ := strings.Cut(g.stdout, "\n")
	if !strings.HasPrefix(header, "guard: quiet: failure, exit code 4, after ") {
		t.Errorf("header %q", header)
	}
	if out != "o1\ne1\no2\ne2\n" {
		t.Errorf("guard's output %q: want the job's lines in the order written", out)
	}
	if !slices.Equal(lines(out), lines(c.stdout+c.stderr)) {
		t.Errorf("guard shows %q, chronic %q", out, c.stdout+c.stderr)
	}
	// Killed by --timeout: shown too.
	g = guard(t, "run", "--lock", lock, "--quiet-success", "--timeout", "500ms", "--", "sh", "-c", "echo before; exec sleep 100")
	if g.code != 143 || !strings.Contains(g.stdout, "timeout, exit code 143") || !strings.Contains(g.stdout, "before\n") {
		t.Errorf("timeout: exit %d, stdout %q", g.code, g.stdout)
	}
}

// A job that writes a gigabyte through --quiet-success: guard's peak RSS
// stays small, and what it prints is the head, a marker and the tail. The
// peak is guard's VmHWM, read from /proc while it runs (the job pauses
// before its end so a reading comes after all its output): wait4's ru_maxrss
// would count the test binary, whose memory the child shares until exec.
func TestQuietSuccessHugeOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 1 GB through a pipe")
	}
	lock := filepath.Join(lockDir(t), "huge.lock")
	cmd := exec.Command(guardBin, "run", "--lock", lock, "--quiet-success", "--", "sh", "-c",
		"echo first line; yes 0123456789abcdef | head -c 1000000000; echo; echo last line; sleep 0.5; exit 1")
	var out bytes.Buffer
	cmd.Stdout = &out
	began := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var hwm, reads int // KiB
	go func() {
		defer close(done)
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		for {
			b, err := os.ReadFile(status)
			if err != nil || !bytes.Contains(b, []byte("VmHWM:")) {
				return // gone, or a zombie
			}
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
					n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
					hwm, reads = max(hwm, n), reads+1
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	cmd.Wait()
	<-done
	t.Logf("1 GB through --quiet-success in %v, guard's peak RSS (VmHWM) %d KiB over %d readings, printed %d bytes", time.Since(began), hwm, reads, out.Len())
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if reads < 10 || hwm == 0 {
		t.Fatalf("only %d readings of guard's VmHWM", reads)
	}
	if hwm > 24<<10 {
		t.Errorf("peak RSS %d KiB, want at most 24 MiB", hwm)
	}
	s := out.String()
	if out.Len() > 300<<10 || !strings.Contains(s, "\nfirst line\n") || !strings.HasSuffix(s, "\nlast line\n") || !strings.Contains(s, " bytes not kept ...]\n") {
		t.Errorf("printed %d bytes: want the head, a marker and the tail", out.Len())
	}
}

// startPushgateway starts Debian's prometheus-pushgateway on a free port and
// returns its URL.
func startPushgateway(t *testing.T) string {
	t.Helper()
	gw := guardtest.RequirePeer(t, "prometheus-pushgateway", "prometheus-pushgateway")
	addr := healthAddr(t)
	p := start(t, gw, "--web.listen-address="+addr)
	url := "http://" + addr
	healthUntil(t, "pushgateway ready", 60*time.Second, []*proc{p}, func() bool {
		code, _, err := healthGet(healthClient, url+"/-/ready")
		return err == nil && code == 200
	})
	return url
}

func pushgatewayMetrics(t *testing.T, url string) string {
	t.Helper()
	_, body := healthMustGet(t, url+"/metrics")
	return body
}

// --push against a real Pushgateway: guard_job_running 1 and the start time
// while the job runs, the outcome at its end, and a failure after a success
// keeps the last success; push_time_seconds is there for the stale-push
// alert.
func TestPushgateway(t *testing.T) {
	gw := startPushgateway(t)
	lock, marker := filepath.Join(lockDir(t), "push.lock"), filepath.Join(t.TempDir(), "go")
	env := []string{"GUARD_PUSH_INSTANCE=host1"}
	series := func(n string) string { return n + `{instance="host1",job="pushed",name="pushed"} ` }
	if p := depStart(t, env, guardBin, "run", "--lock", lock, "--name", "pushed", "--push", gw, "--", "true"); p.wait(t) != 0 {
		t.Fatalf("success run: %s", p.stderr.String())
	}
	body := pushgatewayMetrics(t, gw)
	okLine := lineWith(body, series("guard_job_last_success_timestamp_seconds"))
	if okLine == "" || !strings.Contains(body, series("guard_job_last_exit_code")+"0") {
		t.Fatalf("after a success:\n%s", body)
	}
	p := depStart(t, env, guardBin, "run", "--lock", lock, "--name", "pushed", "--push", gw, "--", "sh", "-c",
		"while [ ! -e "+marker+" ]; do sleep 0.05; done; exit 2")
	guardtest.Eventually(t, "guard_job_running 1 pushed", func() bool {
		return strings.Contains(pushgatewayMetrics(t, gw), series("guard_job_running")+"1")
	})
	os.WriteFile(marker, nil, 0o644)
	if code := p.wait(t); code != 2 {
		t.Fatalf("failure run: exit %d: %s", code, p.stderr.String())
	}
	body = pushgatewayMetrics(t, gw)
	for _, want := range []string{series("guard_job_running") + "0", series("guard_job_last_exit_code") + "2", okLine,
		series("guard_job_last_failure_timestamp_seconds"), series("guard_job_start_timestamp_seconds"), `push_time_seconds{instance="host1",job="pushed"}`} {
		if !strings.Contains(body, want) {
			t.Errorf("Pushgateway lacks %q after a failure:\n%s", want, body)
		}
	}
}

func lineWith(body, prefix string) string {
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// node_exporter sees a job running (with its start time) while it runs,
// before it ends, and the last run and last failure after it.
func TestNodeExporterTextfileAtStart(t *testing.T) {
	ne := guardtest.RequirePeer(t, "prometheus-node-exporter", "prometheus-node-exporter")
	lock, tf, marker := filepath.Join(lockDir(t), "ne.lock"), t.TempDir(), filepath.Join(t.TempDir(), "go")
	addr := healthAddr(t)
	srv := start(t, ne, "--collector.disable-defaults", "--collector.textfile",
		"--collector.textfile.directory="+tf, "--web.listen-address="+addr)
	scrape := func() string {
		_, b, _ := healthGet(healthClient, "http://"+addr+"/metrics")
		return b
	}
	p := startGuard(t, "run", "--lock", lock, "--name", "nejob", "--textfile-dir", tf, "--", "sh", "-c",
		"while [ ! -e "+marker+" ]; do sleep 0.05; done; exit 5")
	healthUntil(t, "node_exporter shows the job running", 60*time.Second, []*proc{srv}, func() bool {
		b := scrape()
		return strings.Contains(b, `guard_job_running{name="nejob"} 1`) && strings.Contains(b, `guard_job_start_timestamp_seconds{name="nejob"} 1.`)
	})
	os.WriteFile(marker, nil, 0o644)
	if code := p.wait(t); code != 5 {
		t.Fatalf("exit %d", code)
	}
	body := scrape()
	for _, want := range []string{`guard_job_running{name="nejob"} 0`, `guard_job_last_run_timestamp_seconds{name="nejob"} 1.`,
		`guard_job_last_failure_timestamp_seconds{name="nejob"} 1.`, `node_textfile_scrape_error 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("node_exporter lacks %q:\n%s", want, body)
		}
	}
}

// startTimes runs n guards at once, each on its own lock with args, and
// returns how long after its launch each job started.
func startTimes(t *testing.T, n int, args ...string) []time.Duration {
	dir := lockDir(t)
	out := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			stamp := filepath.Join(dir, fmt.Sprint(i))
			began := time.Now()
			r := run(t, guardBin, append(append([]string{"run", "--lock", stamp + ".lock"}, args...), "--", "sh", "-c", "date +%s%N > "+stamp)...)
			b, _ := os.ReadFile(stamp)
			ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			if r.code != 0 || err != nil {
				t.Errorf("run %d: exit %d, stamp %q: %s", i, r.code, b, r.stderr)
			}
			out[i] = time.Unix(0, ns).Sub(began)
		})
	}
	wg.Wait()
	return out
}

// --jitter spreads the start of runs launched together over the jitter.
func TestJitterSpreads(t *testing.T) {
	d := startTimes(t, 8, "--jitter", "3s")
	slices.Sort(d)
	t.Logf("start delays with --jitter 3s: %v", d)
	if d[len(d)-1]-d[0] < 500*time.Millisecond {
		t.Errorf("8 runs started within %v of each other: not spread", d[len(d)-1]-d[0])
	}
	if d[len(d)-1] > 3*time.Second+5*time.Second {
		t.Errorf("a run started %v after its launch: more than the jitter allows", d[len(d)-1])
	}
}

// --retries: attempts counted, each under the lock (guard status says it is
// held), a concurrent run during the retry delay gets 75, success on the
// third attempt is guard's 0; all within --timeout.
func TestRetries(t *testing.T) {
	dir := lockDir(t)
	lock, count := filepath.Join(dir, "r.lock"), filepath.Join(dir, "count")
	job := fmt.Sprintf(`%s status --lock "$GUARD_LOCK" >/dev/null || echo UNLOCKED >> %s.bad; echo x >> %s; [ $(wc -l < %s) -ge 3 ]`, guardBin, count, count, count)
	p := startGuard(t, "run", "--lock", lock, "--retries", "5", "--retry-delay", "1s", "--", "sh", "-c", job)
	guardtest.Eventually(t, "the first attempt", func() bool { return fileHas(count, "x") })
	if r := guard(t, "run", "--lock", lock, "--", "true"); r.code != 75 {
		t.Errorf("a run during the retry delay: exit %d, want 75", r.code)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit %d, want 0 (third attempt succeeds): %s", code, p.stderr.String())
	}
	b, _ := os.ReadFile(count)
	if n := strings.Count(string(b), "x"); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	if _, err := os.Stat(count + ".bad"); err == nil {
		t.Errorf("an attempt ran without the lock")
	}
	if !strings.Contains(p.stderr.String(), "attempt 2 of 6 failed (exit code 1); trying again in 1s") {
		t.Errorf("retries not logged: %s", p.stderr.String())
	}
	// All attempts within --timeout: the last one is stopped by it.
	os.Remove(count)
	began := time.Now()
	r := guard(t, "run", "--lock", lock, "--timeout", "3s", "--retries", "100", "--retry-delay", "200ms", "--", "sh", "-c", "echo x >> "+count+"; sleep 0.5; exit 1")
	took := time.Since(began)
	b, _ = os.ReadFile(count)
	t.Logf("--timeout 3s --retries 100: %d attempts, %v, exit %d", strings.Count(string(b), "x"), took, r.code)
	if r.code != 143 && r.code != 1 || took > 3*time.Second+10*time.Second || strings.Count(string(b), "x") > 6 {
		t.Errorf("exit %d after %v and %d attempts: want the runs to end at --timeout", r.code, took, strings.Count(string(b), "x"))
	}
}

// --min-interval: after a success, runs inside the interval exit 0 without
// running the job, counted as skipped; a failure does not count as a
// success; the last success survives a holder killed with SIGKILL; after the
// interval, the job runs again.
func TestMinInterval(t *testing.T) {
	dir, tf := lockDir(t), t.TempDir()
	lock, ran := filepath.Join(dir, "m.lock"), filepath.Join(dir, "ran")
	runJob := func(interval, exit string) int {
		return guard(t, "run", "--lock", lock, "--name", "daily", "--textfile-dir", tf, "--min-interval", interval, "--",
			"sh", "-c", "echo x >> "+ran+"; exit "+exit).code
	}
	runs := func() int { b, _ := os.ReadFile(ran); return strings.Count(string(b), "x") }
	if code := runJob("1h", "1"); code != 1 || runs() != 1 {
		t.Fatalf("first run (a failure): exit %d, %d runs", code, runs())
	}
	if code := runJob("1h", "0"); code != 0 || runs() != 2 {
		t.Fatalf("after a failure the job runs: exit %d, %d runs", code, runs())
	}
	if code := runJob("1h", "0"); code != 0 || runs() != 2 {
		t.Fatalf("inside the interval: exit %d, %d runs: want 0 and no run", code, runs())
	}
	// A holder SIGKILLed mid-run: its record is not released, the last
	// success stays with the lock.
	p := startGuard(t, "run", "--lock", lock, "--", "sleep", "1000")
	guardtest.Eventually(t, "holder holds the lock", func() bool { return held(t, lock) })
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait(t)
	guardtest.Eventually(t, "the killed holder's job gone", func() bool { return !held(t, lock) })
	if code := runJob("1h", "0"); code != 0 || runs() != 2 {
		t.Errorf("after a crash, inside the interval: exit %d, %d runs", code, runs())
	}
	prom, _ := os.ReadFile(filepath.Join(tf, "daily.prom"))
	if !strings.Contains(string(prom), `guard_job_runs_total{name="daily",result="skipped"} 2`) {
		t.Errorf("the skips are not counted:\n%s", prom)
	}
	time.Sleep(1500 * time.Millisecond)
	if code := runJob("1s", "0"); code != 0 || runs() != 3 {
		t.Errorf("after the interval: exit %d, %d runs, want a run", code, runs())
	}
}

// --quiet-success with --retries: a run that succeeds on a later attempt is
// silent, the retry lines included; one that never succeeds shows every
// attempt's output and guard's retry lines, in order.
func TestQuietSuccessRetries(t *testing.T) {
	dir := lockDir(t)
	lock, count := filepath.Join(dir, "qr.lock"), filepath.Join(dir, "count")
	job := fmt.Sprintf(`echo x >> %s; n=$(wc -l < %s); echo "attempt $n"; [ $n -ge 2 ]`, count, count)
	r := guard(t, "run", "--lock", lock, "--quiet-success", "--retries", "3", "--", "sh", "-c", job)
	if r.code != 0 || r.stdout+r.stderr != "" {
		t.Errorf("success on attempt 2: exit %d, stdout %q, stderr %q: want 0 and silence", r.code, r.stdout, r.stderr)
	}
	r = guard(t, "run", "--lock", lock, "--quiet-success", "--retries", "1", "--", "sh", "-c", "echo try; exit 6")
	_, out, _ := strings.Cut(r.stdout, "\n")
	if r.code != 6 || !strings.HasPrefix(out, "try\nguard: ") || !strings.Contains(out, "attempt 1 of 2 failed (exit code 6)") || !strings.HasSuffix(out, "\ntry\n") {
		t.Errorf("never succeeds: exit %d, stdout %q", r.code, r.stdout)
	}
}

// SIGTERM during --jitter: guard exits 143 and the job never runs.
func TestJitterInterrupted(t *testing.T) {
	dir := lockDir(t)
	ran := filepath.Join(dir, "ran")
	tf := t.TempDir()
	p := startGuard(t, "run", "--lock", filepath.Join(dir, "j.lock"), "--name", "j", "--textfile-dir", tf, "--jitter", "1h", "--", "touch", ran)
	// guard checks --textfile-dir (creating its sidecar lock file) after it
	// asked for SIGTERM and before the jitter sleep. SigCgt is no sign: the Go
	// runtime catches SIGTERM from its start, and a TERM that comes before
	// signal.Notify kills guard (exit -1).
	guardtest.Eventually(t, "the textfile's sidecar", func() bool { _, err := os.Stat(filepath.Join(tf, ".j.prom.lock")); return err == nil })
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != 143 || !strings.Contains(p.stderr.String(), "during --jitter") {
		t.Errorf("exit %d, %q: want 143 and one line", code, p.stderr.String())
	}
	if _, err := os.Stat(ran); err == nil {
		t.Error("the job ran")
	}
}
