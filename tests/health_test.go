package tests

// guard run --listen and --textfile-dir against real peers (promtool, a
// Prometheus server, node_exporter), the probes through a standby takeover,
// and the HTTP server's hardening (slowloris, no pprof, bounded series).

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/guardtest"
)

// healthJob is a job that outlives the test and ignores the SIGHUP guard
// forwards to it on a reload.
var healthJob = []string{"sh", "-c", `trap "" HUP; exec sleep 1000`}

// healthAddr returns a free 127.0.0.1 address (never a well-known port).
func healthAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

var healthClient = &http.Client{Timeout: 5 * time.Second}

// healthGet fetches url and returns the status code and body.
func healthGet(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// healthMustGet is healthGet that fails the test on a transport error.
func healthMustGet(t *testing.T, url string) (int, string) {
	t.Helper()
	code, body, err := healthGet(healthClient, url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return code, body
}

// healthUntil polls cond until it holds or d passes; a process in stop that
// exits fails the test at once with its output.
func healthUntil(t *testing.T, what string, d time.Duration, stop []*proc, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		for _, p := range stop {
			if p.exited() {
				t.Fatalf("waiting for %s: %v exited: %s", what, p.cmd.Args, p.stderr.String())
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// healthGuard starts guard run --listen on a free address with args (flags,
// then "--" and the job) and waits until its /livez answers. It returns the
// process and the base URL.
func healthGuard(t *testing.T, args ...string) (*proc, string) {
	t.Helper()
	return healthGuardEnv(t, nil, args...)
}

// healthGuardEnv is healthGuard with env added to the test's environment.
func healthGuardEnv(t *testing.T, env []string, args ...string) (*proc, string) {
	t.Helper()
	addr := healthAddr(t)
	p := startEnv(t, env, guardBin, append([]string{"run", "--listen", addr}, args...)...)
	base := "http://" + addr
	healthUntil(t, "guard /livez", 30*time.Second, []*proc{p}, func() bool {
		code, _, err := healthGet(healthClient, base+"/livez")
		return err == nil && code == 200
	})
	return p, base
}

// healthReady waits until base's /readyz answers 200.
func healthReady(t *testing.T, p *proc, base string) {
	t.Helper()
	healthUntil(t, base+"/readyz 200", 30*time.Second, []*proc{p}, func() bool {
		code, _, err := healthGet(healthClient, base+"/readyz")
		return err == nil && code == 200
	})
}

// healthSeries returns the series (name and labels, no value) of a text
// exposition, and the metric names it declares or samples.
func healthSeries(body string) (series map[string]bool, names map[string]bool) {
	series, names = map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && (f[1] == "HELP" || f[1] == "TYPE") {
			names[f[2]] = true
		}
		if line == "" || line[0] == '#' {
			continue
		}
		key := line[:max(strings.LastIndexByte(line, ' '), 0)]
		series[key] = true
		names[strings.TrimRight(key[:strings.IndexAny(key+"{", "{")], " ")] = true
	}
	return series, names
}

// healthPromtool runs promtool check metrics on an exposition and fails the
// test unless it is clean: exit 0 and no output.
func healthPromtool(t *testing.T, promtool, what, body string) {
	t.Helper()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("promtool check metrics on %s: %v\n%s\n--- input:\n%s", what, err, out, body)
	}
}

// healthzJSON decodes a /healthz body into a generic map, so that missing
// keys are told apart from zero values.
func healthzJSON(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("/healthz is not JSON: %v: %q", err, body)
	}
	return m
}

// healthField returns the value at a dotted path ("lock.held") and whether
// it is present.
func healthField(m map[string]any, path string) (any, bool) {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = obj[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// Test 1: a live guard's /metrics and its textfile pass promtool check
// metrics, and every metric the contract names is there.
func TestPromtoolChecksMetrics(t *testing.T) {
	promtool := guardtest.RequirePeer(t, "promtool", "prometheus")
	lock, tf := filepath.Join(lockDir(t), "job.lock"), t.TempDir()
	// A finished run first, so that the textfile holds every job metric.
	if r := guard(t, "run", "--lock", lock, "--textfile-dir", tf, "--name", "promjob", "--", "true"); r.code != 0 {
		t.Fatalf("first run: %d %s", r.code, r.stderr)
	}
	p, base := healthGuard(t, append([]string{"--lock", lock, "--textfile-dir", tf, "--name", "promjob", "--"}, healthJob...)...)
	healthReady(t, p, base)
	code, body := healthMustGet(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	healthPromtool(t, promtool, "/metrics", body)
	series, live := healthSeries(body)
	if !series["guard_lock_held"] || !strings.Contains(body, "\nguard_lock_held 1\n") {
		t.Errorf("/metrics lacks guard_lock_held 1 while the lock is held")
	}
	for _, s := range []string{`guard_reloads_total{result="success"}`, `guard_reloads_total{result="failure"}`} {
		if !series[s] {
			t.Errorf("/metrics lacks %s", s)
		}
	}
	prom, err := os.ReadFile(filepath.Join(tf, "promjob.prom"))
	if err != nil {
		t.Fatal(err)
	}
	healthPromtool(t, promtool, "promjob.prom", string(prom))
	_, file := healthSeries(string(prom))
	for _, name := range []string{
		"guard_lock_held", "guard_lock_acquisitions_total", "guard_lock_contended_total",
		"guard_lock_wait_seconds", "guard_reloads_total", "guard_last_reload_success_timestamp_seconds",
		"guard_build_info", "guard_job_runs_total", "guard_job_last_success_timestamp_seconds",
	} {
		if !live[name] {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	// Absent from a live run's /metrics until the run ends (and the
	// server ends with it): the textfile carries them.
	for _, name := range []string{"guard_job_last_exit_code", "guard_job_duration_seconds"} {
		if !live[name] && !file[name] {
			t.Errorf("neither /metrics nor the textfile has %s", name)
		}
		if !live[name] {
			t.Logf("%s: absent from the live /metrics, present in the textfile", name)
		}
	}
}

// Test 2: a real Prometheus server scrapes guard and sees the lock held.
func TestPrometheusScrapesGuard(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	prometheus := guardtest.RequirePeer(t, "prometheus", "prometheus")
	promtool := guardtest.RequirePeer(t, "promtool", "prometheus")
	p, base := healthGuard(t, append([]string{"--lock", filepath.Join(lockDir(t), "job.lock"), "--"}, healthJob...)...)
	healthReady(t, p, base)

	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	target := strings.TrimPrefix(base, "http://")
	err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: guard
    static_configs:
      - targets: ['%s']
`, target)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if r := run(t, promtool, "check", "config", cfg); r.code != 0 {
		t.Fatalf("promtool check config: %s%s", r.stdout, r.stderr)
	}
	web := healthAddr(t)
	srv := start(t, prometheus, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+web, "--log.level=warn")
	query := func(q string) string { // the value of the single series q selects, or ""
		code, body, err := healthGet(healthClient, "http://"+web+"/api/v1/query?query="+url.QueryEscape(q))
		if err != nil || code != 200 {
			return ""
		}
		var r struct {
			Data struct {
				Result []struct {
					Value []any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.Unmarshal([]byte(body), &r) != nil || len(r.Data.Result) != 1 || len(r.Data.Result[0].Value) != 2 {
			return ""
		}
		s, _ := r.Data.Result[0].Value[1].(string)
		return s
	}
	defer func() {
		if t.Failed() {
			_, targets, _ := healthGet(healthClient, "http://"+web+"/api/v1/targets")
			t.Logf("targets: %s\nprometheus output:\n%s", targets, srv.stderr.String())
		}
	}()
	healthUntil(t, "Prometheus to see guard_lock_held 1", 90*time.Second, []*proc{p, srv}, func() bool {
		return query(`guard_lock_held{job="guard"}`) == "1"
	})
	if v := query(`up{job="guard"}`); v != "1" {
		t.Errorf(`up{job="guard"} = %q, want "1"`, v)
	}
	if v := query(`guard_build_info{job="guard"}`); v != "1" {
		t.Errorf(`guard_build_info = %q, want "1"`, v)
	}
}

// Test 3: node_exporter's textfile collector serves guard's textfile after
// a success, a failure and a skipped run.
func TestNodeExporterTextfile(t *testing.T) {
	ne := guardtest.RequirePeer(t, "prometheus-node-exporter", "prometheus-node-exporter")
	lock, tf := filepath.Join(lockDir(t), "job.lock"), t.TempDir()
	runJob := func(job ...string) int {
		return guard(t, append([]string{"run", "--lock", lock, "--textfile-dir", tf, "--name", "nodejob", "--"}, job...)...).code
	}
	if code := runJob("true"); code != 0 {
		t.Fatalf("success run: exit %d", code)
	}
	if code := runJob("false"); code != 1 {
		t.Fatalf("failure run: exit %d", code)
	}
	holder := startGuard(t, "run", "--lock", lock, "--", "sleep", "1000")
	guardtest.Eventually(t, "holder holds the lock", func() bool { return held(t, lock) })
	if code := runJob("true"); code != 75 {
		t.Fatalf("busy run: exit %d, want 75", code)
	}
	holder.cmd.Process.Kill()
	holder.wait(t)

	addr := healthAddr(t)
	srv := start(t, ne, "--collector.disable-defaults", "--collector.textfile",
		"--collector.textfile.directory="+tf, "--web.listen-address="+addr)
	var body string
	healthUntil(t, "node_exporter /metrics", 60*time.Second, []*proc{srv}, func() bool {
		code, b, err := healthGet(healthClient, "http://"+addr+"/metrics")
		body = b
		return err == nil && code == 200 && strings.Contains(b, "guard_job_runs_total")
	})
	for _, want := range []string{
		`guard_job_runs_total{name="nodejob",result="success"} 1`,
		`guard_job_runs_total{name="nodejob",result="failure"} 1`,
		`guard_job_runs_total{name="nodejob",result="skipped"} 1`,
		`guard_job_last_exit_code{name="nodejob"} 1`,
		`node_textfile_scrape_error 0`,
	} {
		if !slices.Contains(strings.Split(body, "\n"), want) {
			t.Errorf("node_exporter /metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("node_exporter /metrics:\n%s\noutput:\n%s", body, srv.stderr.String())
	}
}

// Test 4: a standby is live but not ready while it waits, and turns ready
// once guard stop ends the holder.
func TestStandbyTakesOverHealth(t *testing.T) {
	lock := filepath.Join(lockDir(t), "job.lock")
	holder, a := healthGuard(t, "--lock", lock, "--", "sleep", "1000")
	healthReady(t, holder, a)
	_, hb := healthMustGet(t, a+"/healthz")
	holderToken, _ := healthField(healthzJSON(t, hb), "lock.token")

	standby, b := healthGuard(t, "--wait", "forever", "--lock", lock, "--", "sleep", "1000")
	healthUntil(t, "the standby to wait", 30*time.Second, []*proc{standby}, func() bool {
		_, body := healthMustGet(t, b+"/healthz")
		w, _ := healthField(healthzJSON(t, body), "lock.waiting")
		return w == true
	})
	if code, body := healthMustGet(t, b+"/livez"); code != 200 {
		t.Errorf("standby /livez: %d %q", code, body)
	}
	if code, body := healthMustGet(t, b+"/readyz"); code != 503 || !strings.Contains(body, "standby") {
		t.Errorf("standby /readyz: %d %q, want 503 naming the standby", code, body)
	}
	code, body := healthMustGet(t, b+"/healthz")
	hz := healthzJSON(t, body)
	if st, _ := healthField(hz, "status"); code != 503 || st != "fail" {
		t.Errorf("standby /healthz: %d status %v, want 503 fail", code, st)
	}
	if h, _ := healthField(hz, "lock.held"); h != false {
		t.Errorf("standby /healthz lock.held = %v", h)
	}
	if _, m := healthMustGet(t, b+"/metrics"); !strings.Contains(m, "\nguard_lock_waiting 1\n") ||
		!strings.Contains(m, "\nguard_lock_held 0\n") {
		t.Errorf("standby /metrics: want guard_lock_waiting 1 and guard_lock_held 0")
	}

	stopped := time.Now()
	stop := start(t, guardBin, "stop", "--lock", lock, "--timeout", "20s")
	holder.wait(t)
	ended := time.Now()
	healthReady(t, standby, b)
	t.Logf("standby ready %v after guard stop started, %v after the holder was seen to exit (contract: within a second)",
		time.Since(stopped).Round(time.Millisecond), time.Since(ended).Round(time.Millisecond))
	if code := stop.wait(t); code != 0 {
		t.Errorf("guard stop with a standby taking over: exit %d after %v, want 0:\n%s",
			code, time.Since(ended).Round(time.Millisecond), stop.stderr.String())
	}

	_, body = healthMustGet(t, b+"/healthz")
	hz = healthzJSON(t, body)
	pid, _ := healthField(hz, "lock.pid")
	token, _ := healthField(hz, "lock.token")
	if pid != float64(standby.cmd.Process.Pid) {
		t.Errorf("after takeover lock.pid = %v, want the standby's %d", pid, standby.cmd.Process.Pid)
	}
	if tk, ok := token.(float64); !ok || tk <= holderToken.(float64) {
		t.Errorf("after takeover token %v, want more than the holder's %v", token, holderToken)
	}
	if _, m := healthMustGet(t, b+"/metrics"); !strings.Contains(m, "\nguard_lock_held 1\n") ||
		!strings.Contains(m, "\nguard_lock_wait_seconds_count 1\n") || !strings.Contains(m, "\nguard_lock_contended_total 1\n") {
		t.Errorf("standby /metrics after takeover: want guard_lock_held 1, one wait, one contention:\n%s", m)
	}
}

// Test 5a: no pprof, no expvar on guard's server.
func TestDebugEndpointsAbsent(t *testing.T) {
	p, base := healthGuard(t, append([]string{"--lock", filepath.Join(lockDir(t), "job.lock"), "--"}, healthJob...)...)
	healthReady(t, p, base)
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline",
		"/debug/pprof/goroutine?debug=2", "/debug/pprof/profile?seconds=1", "/debug/vars"} {
		if code, body := healthMustGet(t, base+path); code != 404 {
			t.Errorf("GET %s: %d %.80q, want 404", path, code, body)
		}
	}
}

// Test 5b: 300 half-open connections (partial headers, half of them
// trickling a byte now and then) neither starve the probes nor stay open
// past the header timeout.
func TestSlowlorisHealth(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the server's header timeout")
	}
	p, base := healthGuard(t, append([]string{"--lock", filepath.Join(lockDir(t), "job.lock"), "--"}, healthJob...)...)
	healthReady(t, p, base)
	addr := strings.TrimPrefix(base, "http://")

	const n = 300
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		defer c.Close()
		if _, err := fmt.Fprintf(c, "GET /livez HTTP/1.1\r\nHost: %s\r\nX-Slow-%d: ", addr, i); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns[i] = c
	}
	opened := time.Now()
	done := make(chan struct{})
	defer close(done)
	for _, c := range conns[n/2:] { // trickle: a byte per 500ms never ends the headers
		go func() {
			tick := time.NewTicker(500 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					if _, err := c.Write([]byte("x")); err != nil {
						return
					}
				}
			}
		}()
	}

	probe := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 0; i < 10; i++ {
		for _, path := range []string{"/livez", "/readyz"} {
			if code, body, err := healthGet(probe, base+path); err != nil || code != 200 {
				t.Fatalf("%s with %d slow connections open: %d %q %v", path, n, code, body, err)
			}
		}
	}
	t.Logf("20 probes answered within %v of opening %d slow connections", time.Since(opened).Round(time.Millisecond), n)

	var wg sync.WaitGroup
	var open atomic.Int32
	var last atomic.Int64
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(opened.Add(30 * time.Second))
			_, err := io.Copy(io.Discard, c) // nil at EOF
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				open.Add(1)
				return
			}
			for d := int64(time.Since(opened)); ; {
				if old := last.Load(); d <= old || last.CompareAndSwap(old, d) {
					break
				}
			}
		}()
	}
	wg.Wait()
	if k := open.Load(); k > 0 {
		t.Fatalf("%d of %d slow connections still open 30s later", k, n)
	}
	t.Logf("the server closed all %d slow connections within %v", n, time.Duration(last.Load()).Round(time.Millisecond))
	if code, _, err := healthGet(probe, base+"/livez"); err != nil || code != 200 {
		t.Fatalf("/livez after the slow connections: %d %v", code, err)
	}
}

// Test 5c: requests to random paths, methods and queries add no series.
func TestCardinalityRandomPaths(t *testing.T) {
	p, base := healthGuard(t, append([]string{"--lock", filepath.Join(lockDir(t), "job.lock"), "--"}, healthJob...)...)
	healthReady(t, p, base)
	_, body := healthMustGet(t, base+"/metrics")
	before, _ := healthSeries(body)

	rng := rand.New(rand.NewPCG(1, 2))
	word := func() string { return strconv.FormatUint(rng.Uint64(), 36) }
	prefixes := []string{"/", "/metrics/", "/livez/", "/healthz/", "/debug/", "/api/v1/", "/x/%2e%2e/"}
	methods := []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"}
	for i := 0; i < 300; i++ {
		path := prefixes[rng.IntN(len(prefixes))] + word() + "?" + word() + "=" + word()
		switch i % 10 { // known paths with junk queries and methods
		case 0:
			path = "/metrics?name[]=" + word()
		case 1:
			path = "/healthz?" + word()
		}
		req, err := http.NewRequest(methods[rng.IntN(len(methods))], base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("User-Agent", "rand/"+word())
		req.Header.Set("X-"+word(), word())
		resp, err := healthClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", req.Method, path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	_, body = healthMustGet(t, base+"/metrics")
	after, _ := healthSeries(body)
	for s := range after {
		if !before[s] {
			t.Errorf("new series after random requests: %s", s)
		}
	}
	for s := range before {
		if !after[s] {
			t.Errorf("series gone after random requests: %s", s)
		}
	}
	t.Logf("%d series before and %d after 300 random requests", len(before), len(after))
}

// Test 6: /healthz carries the contract's fields, and SIGHUP to guard
// counts as a reload.
func TestHealthzJSONAndReload(t *testing.T) {
	lock := filepath.Join(lockDir(t), "job.lock")
	p, base := healthGuard(t, append([]string{"--lock", lock, "--"}, healthJob...)...)
	healthReady(t, p, base)
	code, body := healthMustGet(t, base+"/healthz")
	hz := healthzJSON(t, body)
	if code != 200 {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	for _, f := range []string{"status", "lock.path", "lock.held", "lock.pid", "lock.since", "lock.token",
		"reloads.total", "reloads.failed"} {
		if _, ok := healthField(hz, f); !ok {
			t.Errorf("/healthz lacks %s: %s", f, body)
		}
	}
	var st struct {
		Token uint64 `json:"token"`
	}
	if r := guard(t, "status", "--lock", lock, "--json"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
		t.Fatalf("status: %d %q", r.code, r.stdout)
	}
	var hs struct {
		Status string `json:"status"`
		Lock   struct {
			Path  string `json:"path"`
			Held  bool   `json:"held"`
			PID   int    `json:"pid"`
			Since string `json:"since"`
			Token uint64 `json:"token"`
		} `json:"lock"`
	}
	json.Unmarshal([]byte(body), &hs)
	since, err := time.Parse(time.RFC3339Nano, hs.Lock.Since)
	switch {
	case hs.Status != "ok" || hs.Lock.Path != lock || !hs.Lock.Held || hs.Lock.PID != p.cmd.Process.Pid:
		t.Errorf("/healthz = %s, want status ok, path %s, held by PID %d", body, lock, p.cmd.Process.Pid)
	case err != nil || time.Since(since) > time.Hour || time.Until(since) > time.Minute:
		t.Errorf("lock.since = %q (%v), want about now", hs.Lock.Since, err)
	case hs.Lock.Token != st.Token || st.Token == 0:
		t.Errorf("lock.token = %d, guard status --json says %d", hs.Lock.Token, st.Token)
	}

	for n := 1; n <= 2; n++ {
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		healthUntil(t, fmt.Sprintf("reloads.total %d", n), 30*time.Second, []*proc{p}, func() bool {
			_, body := healthMustGet(t, base+"/healthz")
			v, _ := healthField(healthzJSON(t, body), "reloads.total")
			return v == float64(n)
		})
	}
	_, body = healthMustGet(t, base+"/healthz")
	hz = healthzJSON(t, body)
	if v, _ := healthField(hz, "reloads.failed"); v != float64(0) {
		t.Errorf("reloads.failed = %v, want 0", v)
	}
	if v, _ := healthField(hz, "reloads.last_success"); v == nil {
		t.Errorf("reloads.last_success is null after two reloads")
	}
	if _, m := healthMustGet(t, base+"/metrics"); !strings.Contains(m, "\nguard_reloads_total{result=\"success\"} 2\n") {
		t.Errorf("/metrics lacks guard_reloads_total{result=\"success\"} 2")
	}
	if code, _ := healthMustGet(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz after reloads: %d", code)
	}
}
