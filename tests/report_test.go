package tests

// guard run's reports for cron jobs (issue 11): --ping against a real HTTP
// recorder, --quiet-success beside chronic(1), --push to a real
// Pushgateway, the textfile at the job's start through a real
// node_exporter, and --jitter, --retries and --min-interval driven by real
// runs.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/guardtest"
)

// pingReq is one request a recorder received.
type pingReq struct {
	method, path, rid, body string
	at                      time.Time
}

// recorder is a real HTTP server on 127.0.0.1 that records every request;
// hang makes it answer none (until the test ends).
type recorder struct {
	url  string
	mu   sync.Mutex
	reqs []pingReq
}

func newRecorder(t *testing.T, hang bool) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{url: "http://" + ln.Addr().String()}
	stop := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, pingReq{r.Method, r.URL.Path, r.URL.Query().Get("rid"), string(b), time.Now()})
		rec.mu.Unlock()
		if hang {
			<-stop
		}
		io.WriteString(w, "OK")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { close(stop); srv.Close() })
	return rec
}

func (r *recorder) got() []pingReq {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// The start ping, then the end ping with the exit status, one run id, the
// output's tail as the body; guard's exit code is the job's. With guard's
// stdout and stderr the same file (as under cron), the job's output passes
// through in its exact order and the body is its last whole lines; with two
// files, each stream passes through whole.
func TestPingOrderRunIDBody(t *testing.T) {
	rec := newRecorder(t, false)
	check := rec.url + "/ping/s3cr3t-check"
	lock := filepath.Join(lockDir(t), "p.lock")
	// 100 000 numbered lines on stdout and stderr: more than the body keeps.
	job := `i=0; while [ $i -lt 50000 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done; echo last line; exit 3`
	var want strings.Builder
	for i := range 50000 {
		fmt.Fprintf(&want, "out %d\nerr %d\n", i, i)
	}
	want.WriteString("last line\n")
	outFile := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(outFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(guardBin, "run", "--lock", lock, "--ping", check, "--", "sh", "-c", job)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Run()
	f.Close()
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Fatalf("exit %d, want the job's 3", code)
	}
	// The job's output as written, then guard's one line about the failure.
	b, _ := os.ReadFile(outFile)
	rest, ok := strings.CutPrefix(string(b), want.String())
	if !ok || !strings.HasPrefix(rest, "guard: ") || strings.Count(rest, "\n") != 1 {
		t.Errorf("the job's output (%d bytes, then %q) is not passed through as written (%d bytes)", len(b), rest[:min(len(rest), 100)], want.Len())
	}
	reqs := rec.got()
	if len(reqs) != 2 {
		t.Fatalf("got %d requests, want 2: %+v", len(reqs), reqs)
	}
	start, end := reqs[0], reqs[1]
	if start.path != "/ping/s3cr3t-check/start" || end.path != "/ping/s3cr3t-check/3" || end.method != http.MethodPost {
		t.Errorf("requests %s %s, %s %s: want start, then a POST to /3", start.method, start.path, end.method, end.path)
	}
	if !uuidRE.MatchString(start.rid) || start.rid != end.rid {
		t.Errorf("run ids %q, %q: want one UUID", start.rid, end.rid)
	}
	if len(end.body) > 10<<10 || len(end.body) < 5<<10 || !strings.HasSuffix(want.String(), end.body) || !regexp.MustCompile(`^(out|err) \d+\n`).MatchString(end.body) {
		t.Errorf("body: %d bytes, starts %q, ends %q: want the last whole lines, at most 10 KiB", len(end.body), end.body[:min(20, len(end.body))], end.body[max(0, len(end.body)-20):])
	}
	// Two files: each stream whole; the next run has a new run id.
	r := guard(t, "run", "--lock", lock, "--ping", check, "--", "sh", "-c", "echo o1; echo e1 >&2; echo o2")
	if r.code != 0 || r.stdout != "o1\no2\n" || r.stderr != "e1\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	reqs = rec.got()
	if len(reqs) != 4 || reqs[3].path != "/ping/s3cr3t-check/0" || reqs[3].rid == start.rid || reqs[3].rid != reqs[2].rid {
		t.Errorf("second run: %+v", reqs[2:])
	}
	if b := reqs[3].body; len(b) != 9 || !strings.Contains(b, "o1\n") || !strings.Contains(b, "e1\n") || !strings.HasSuffix(b, "\n") {
		t.Errorf("second run's body %q: want its three lines", b)
	}
}

// A monitoring URL (pings and pushes) that refuses connections or never
// answers: the job still runs at once, guard's exit code is the job's, the lock is released while
// guard still waits for the ping, guard's added time is bounded, the
// failures are logged and counted in the textfile, and the URL's secret
// path is nowhere: not in the log, the textfile or /metrics.
func TestPingDeadOrHanging(t *testing.T) {
	dead := func() string { // a port nobody listens on
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return "http://" + ln.Addr().String()
	}()
	for _, tc := range []struct {
		name  string
		base  string
		bound time.Duration // generous: the contract says "bounded"
	}{
		{"refused", dead, 10 * time.Second},
		{"hanging", newRecorder(t, true).url, 40 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, tf := lockDir(t), t.TempDir()
			lock, marker := filepath.Join(dir, "d.lock"), filepath.Join(dir, "started")
			addr := healthAddr(t)
			url := tc.base + "/s3cr3t-path?token=s3cr3t-query"
			began := time.Now()
			p := startGuard(t, "run", "--lock", lock, "--name", "deadping", "--textfile-dir", tf, "--listen", addr,
				"--ping", url, "--push", tc.base+"/s3cr3t-push", "--", "sh", "-c", "date +%s.%N > "+marker+"; sleep 1; exit 7")
			guardtest.Eventually(t, "the job started", func() bool { return fileHas(marker, ".") })
			jobStart := time.Since(began)
			_, metrics := healthMustGet(t, "http://"+addr+"/metrics")
			// The job ends after 1s; the lock is free while guard may still be pinging.
			guardtest.Eventually(t, "the lock released", func() bool { return !held(t, lock) })
			freed := time.Since(began)
			code := p.wait(t)
			total := time.Since(began)
			t.Logf("job started after %v, lock free after %v, guard ended after %v (the job ran ~1s)", jobStart, freed, total)
			if code != 7 {
				t.Errorf("exit %d, want the job's 7: %s", code, p.stderr.String())
			}
			if jobStart > 5*time.Second {
				t.Errorf("the job started %v after guard: the start ping delayed it", jobStart)
			}
			if freed > 8*time.Second {
				t.Errorf("the lock was free only %v after guard started: the ping delayed the release", freed)
			}
			if total > tc.bound {
				t.Errorf("guard took %v, want at most %v", total, tc.bound)
			}
			prom, _ := os.ReadFile(filepath.Join(tf, "deadping.prom"))
			if !strings.Contains(string(prom), `guard_report_failures_total{name="deadping",target="ping"} 2`) ||
				!strings.Contains(string(prom), `guard_report_failures_total{name="deadping",target="push"} 2`) {
				t.Errorf("textfile does not count 2 failed pings and 2 failed pushes:\n%s", prom)
			}
			if !strings.Contains(p.stderr.String(), "ping failed") || !strings.Contains(p.stderr.String(), "--push") {
				t.Errorf("no failed ping logged: %s", p.stderr.String())
			}
			for what, s := range map[string]string{"log": p.stderr.String(), "textfile": string(prom), "/metrics": metrics} {
				if strings.Contains(s, "s3cr3t") {
					t.Errorf("the URL's secret is in the %s:\n%s", what, s)
				}
			}
		})
	}
}

// A run skipped because the lock is busy pings nothing, unless
// --ping-skipped: then URL/75 with the reason.
func TestPingSkipped(t *testing.T) {
	rec := newRecorder(t, false)
	lock := filepath.Join(lockDir(t), "s.lock")
	holder := startGuard(t, "run", "--lock", lock, "--", "sleep", "1000")
	guardtest.Eventually(t, "holder holds the lock", func() bool { return held(t, lock) })
	if r := guard(t, "run", "--lock", lock, "--ping", rec.url+"/c", "--quiet", "--", "true"); r.code != 75 {
		t.Fatalf("busy run: exit %d", r.code)
	}
	if n := len(rec.got()); n != 0 {
		t.Fatalf("a skipped run without --ping-skipped pinged %d times", n)
	}
	if r := guard(t, "run", "--lock", lock, "--ping", rec.url+"/c", "--ping-skipped", "--quiet", "--", "true"); r.code != 75 {
		t.Fatalf("busy run: exit %d", r.code)
	}
	reqs := rec.got()
	if len(reqs) != 1 || reqs[0].path != "/c/75" || !strings.Contains(reqs[0].body, strconv.Itoa(holder.cmd.Process.Pid)) {
		t.Errorf("--ping-skipped sent %+v: want one POST to /c/75 naming the holder's PID %d", reqs, holder.cmd.Process.Pid)
	}
}

// Bad report flags are usage errors (64) on one line that never shows the
// URL, under GUARD_PARSE_ONLY=1 too.
func TestReportFlagsUsage(t *testing.T) {
	lock := filepath.Join(lockDir(t), "u.lock")
	for _, args := range [][]string{
		{"--ping", "hc-ping.example/s3cr3t"},
		{"--ping", "ftp://h/s3cr3t"},
		{"--push", "http:///s3cr3t"},
		{"--ping", "http://h/s3cr3t#frag"},
		{"--ping-skipped"},
		{"--retries", "-1"},
		{"--retries", "x"},
		{"--retry-delay", "-1s", "--retries", "1"},
		{"--retry-delay", "1s"},
		{"--jitter", "-5s"},
		{"--min-interval", "soon"},
		{"--quiet-success", "--detach"},
	} {
		for _, env := range []string{"", "1"} {
			cmd := exec.Command(guardBin, append(append([]string{"run", "--lock", lock}, args...), "--", "true")...)
			cmd.Env = append(os.Environ(), "GUARD_PARSE_ONLY="+env)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != 64 || strings.Count(stderr.String(), "\n") != 1 || strings.Contains(stderr.String(), "s3cr3t") {
				t.Errorf("%v (GUARD_PARSE_ONLY=%s): exit %d, stderr %q: want 64 and one line without the URL", args, env, code, stderr.String())
			}
		}
	}
	cmd := exec.Command(guardBin, "run", "--lock", lock, "--ping", "https://h/x", "--ping-skipped", "--push", "http://h:9091",
		"--quiet-success", "--jitter", "1m", "--retries", "2", "--retry-delay", "5s", "--min-interval", "23h", "--", "false")
	cmd.Env = append(os.Environ(), "GUARD_PARSE_ONLY=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("every report flag, parse only: %v %s", err, out)
	}
}

// GUARD_PING_URL is --ping's URL when the flag is absent, so a secret URL
// can stay out of the command line that every local user reads in ps; the
// job does not inherit it.
func TestPingURLFromEnvironment(t *testing.T) {
	rec := newRecorder(t, false)
	check := rec.url + "/ping/s3cr3t-env"
	lock := filepath.Join(lockDir(t), "e.lock")
	dir := t.TempDir()
	p := startEnv(t, []string{"GUARD_PING_URL=" + check}, guardBin, "run", "--lock", lock, "--", "sh", "-c",
		`env > "$1/env"; touch "$1/started"; while [ ! -e "$1/go" ]; do sleep 0.05; done`, "sh", dir)
	guardtest.Eventually(t, "the job to start", func() bool { _, err := os.Stat(filepath.Join(dir, "started")); return err == nil })
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.cmd.Process.Pid))
	if err != nil || strings.Contains(string(cmdline), "s3cr3t") {
		t.Errorf("guard's command line (%v) shows the URL: %q", err, cmdline)
	}
	if env, _ := os.ReadFile(filepath.Join(dir, "env")); strings.Contains(string(env), "GUARD_PING_URL") || len(env) == 0 {
		t.Errorf("the job's environment has GUARD_PING_URL (or could not be read): %q", env)
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit %d: %s", code, p.stderr)
	}
	reqs := rec.got()
	if len(reqs) != 2 || reqs[0].path != "/ping/s3cr3t-env/start" || reqs[1].path != "/ping/s3cr3t-env/0" {
		t.Fatalf("requests %+v: want start and 0 on the URL from the environment", reqs)
	}
	if r := guardEnv(t, []string{"GUARD_PING_URL=ftp://x", "GUARD_PARSE_ONLY=1"}, "run", "--lock", lock, "--", "true"); r.code != 64 || strings.Contains(r.stderr, "ftp://x") {
		t.Errorf("a bad GUARD_PING_URL: exit %d, %q: want 64 without the URL", r.code, r.stderr)
	}
}
