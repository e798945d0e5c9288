package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/guardkit/guard/etcd/internal/etcdtest"
	"github.com/guardkit/guard/internal/guardtest"
)

var (
	bin      string // guard-etcd, built by TestMain
	etcdctl  string // etcdctl 3.7, built from its module (a tool of this module)
	endpoint string // the test etcd's client address
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "guard-etcd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	bin = filepath.Join(dir, "guard-etcd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build guard-etcd: %v\n%s", err, out)
		os.Exit(2)
	}
	etcdctl = filepath.Join(dir, "etcdctl")
	if out, err := exec.Command("go", "build", "-o", etcdctl, "go.etcd.io/etcd/etcdctl/v3").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build etcdctl: %v\n%s", err, out)
		os.Exit(2)
	}
	e, ep, err := etcdtest.Start(filepath.Join(dir, "etcd"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "start etcd:", err)
		os.Exit(2)
	}
	endpoint = ep
	code := m.Run()
	e.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a guard-etcd started in the background, in its own process group.
type proc struct {
	cmd    *exec.Cmd
	stderr syncBuffer
	done   chan struct{}
}

// syncBuffer is a bytes.Buffer that the process's output copier writes
// while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func start(t *testing.T, args ...string) *proc { t.Helper(); return startProg(t, bin, args...) }

func startProg(t *testing.T, prog string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(prog, args...), done: make(chan struct{})}
	p.cmd.Stderr = &p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
	return p
}

func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(guardtest.Patience):
		t.Fatalf("%v did not end", p.cmd.Args)
		return -1
	}
}

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// The same command line as guard's, on an etcd lock: busy is 75 naming the
// holder, status 0 while held and 3 after a clean end, TERM stops the job.
func TestRunStatusBusy(t *testing.T) {
	dir := t.TempDir()
	name := "basic-" + fmt.Sprint(time.Now().UnixNano())
	ready, env := filepath.Join(dir, "ready"), filepath.Join(dir, "env")
	h := start(t, "run", "--etcd", endpoint, "--name", name, "--", "sh", "-c",
		`echo "$GUARD_TOKEN $ETCD_LOCK_REV $ETCD_LOCK_KEY" >`+env+"; touch "+ready+"; exec sleep 300")
	guardtest.Eventually(t, "the holder's job", func() bool { return exists(ready) })
	b, _ := os.ReadFile(env)
	f := strings.Fields(string(b))
	if len(f) != 3 || f[0] != f[1] || f[0] == "0" || !strings.HasPrefix(f[2], "/guard/"+name+"/") {
		t.Fatalf("job's GUARD_TOKEN, ETCD_LOCK_REV, ETCD_LOCK_KEY = %q: want the token twice and a key under /guard/%s/", b, name)
	}
	if code, _, errs := run(t, "run", "--etcd", endpoint, "--name", name, "--", "true"); code != 75 ||
		!strings.Contains(errs, fmt.Sprint(h.cmd.Process.Pid)) {
		t.Fatalf("second run: exit %d %q, want 75 naming PID %d", code, errs, h.cmd.Process.Pid)
	}
	if code, out, errs := run(t, "status", "--etcd", endpoint, "--name", name); code != 0 || !strings.Contains(out, "running") {
		t.Fatalf("status while held: %d %q %q", code, out, errs)
	}
	h.cmd.Process.Signal(syscall.SIGTERM)
	if code := h.wait(t); code != 128+int(syscall.SIGTERM) {
		t.Fatalf("holder after SIGTERM: exit %d (%s), want 143", code, h.stderr.String())
	}
	if code, out, _ := run(t, "status", "--etcd", endpoint, "--name", name); code != 3 {
		t.Fatalf("status after a clean end: %d %q, want 3", code, out)
	}
}

// A holder cut off from etcd (a silent partition) has its job's whole tree
// killed before a standby on the other side of the partition gets the lock
// and starts its job: a flock(1) witness held by the holder's job (and by a
// process it left in the background) is always free when the standby's job
// takes it. The cut-off guard exits 69.
func TestPartitionKillsTreeBeforeStandby(t *testing.T) {
	guardtest.RequirePeer(t, "flock", "util-linux")
	rounds := 5
	if testing.Short() {
		rounds = 2
	}
	for i := range rounds {
		dir := t.TempDir()
		name := fmt.Sprintf("partition-%d-%d", time.Now().UnixNano(), i)
		witness, ready := filepath.Join(dir, "witness"), filepath.Join(dir, "ready")
		px := etcdtest.NewProxy(t, endpoint)
		job := fmt.Sprintf(`flock -n %s sh -c 'trap "" TERM; (trap "" TERM; sleep 300) & touch %s; wait'`, witness, ready)
		h := start(t, "run", "--etcd", px.Addr(), "--ttl", "4s", "--lease-grace", "1s", "--kill-after", "30s",
			"--name", name, "--", "sh", "-c", job)
		guardtest.Eventually(t, "the holder's job", func() bool { return exists(ready) })
		s := start(t, "run", "--etcd", endpoint, "--wait", "60s", "--name", name, "--",
			"flock", "-n", "-E", "99", witness, "true")
		time.Sleep(time.Duration(i) * 300 * time.Millisecond) // cut at different points of the renewal cycle
		px.Blackhole()
		if code := s.wait(t); code != 0 {
			t.Fatalf("round %d: standby exit %d (99: its job found the old tree alive); %s", i, code, s.stderr.String())
		}
		if code := h.wait(t); code != 69 {
			t.Fatalf("round %d: cut-off holder exit %d, want 69; %s", i, code, h.stderr.String())
		}
		px.Close()
	}
}

// stop and reload from another "host": a second guard-etcd process asks the
// holder through etcd. reload reaches the job (SIGHUP) with an answer; stop
// ends the job's whole tree, releases, and returns 0 once the lock is free;
// a stop for a lock nobody holds says so and exits 0.
func TestStopReloadThroughEtcd(t *testing.T) {
	dir := t.TempDir()
	name := "control-" + fmt.Sprint(time.Now().UnixNano())
	ready, hups, bg := filepath.Join(dir, "ready"), filepath.Join(dir, "hups"), filepath.Join(dir, "bg")
	job := fmt.Sprintf(`trap 'echo hup >>%s' HUP; (trap "" HUP; sleep 300) & echo $! >%s; touch %s; while :; do sleep 0.05; done`, hups, bg, ready)
	h := start(t, "run", "--etcd", endpoint, "--name", name, "--", "sh", "-c", job)
	guardtest.Eventually(t, "the holder's job", func() bool { return exists(ready) })
	if code, out, errs := run(t, "reload", "--etcd", endpoint, "--name", name); code != 0 {
		t.Fatalf("reload: %d %q %q", code, out, errs)
	}
	guardtest.Eventually(t, "SIGHUP in the job", func() bool { b, _ := os.ReadFile(hups); return string(b) == "hup\n" })
	b, _ := os.ReadFile(bg)
	worker := strings.TrimSpace(string(b))
	if code, out, errs := run(t, "stop", "--etcd", endpoint, "--name", name); code != 0 || !strings.Contains(out, "stopped") {
		t.Fatalf("stop: %d %q %q", code, out, errs)
	}
	if code := h.wait(t); code == 0 {
		t.Fatalf("holder exit 0 after a stop request; %s", h.stderr.String())
	}
	if _, err := os.Stat("/proc/" + worker); err == nil {
		t.Fatalf("the job's background process %s outlived the stop", worker)
	}
	if code, out, _ := run(t, "status", "--etcd", endpoint, "--name", name); code != 3 {
		t.Fatalf("status after stop: %d %q, want 3", code, out)
	}
	if code, out, _ := run(t, "stop", "--etcd", endpoint, "--name", name); code != 0 || !strings.Contains(out, "not running") {
		t.Fatalf("stop of a free lock: %d %q", code, out)
	}
	if code, _, _ := run(t, "reload", "--etcd", endpoint, "--name", name); code != 7 {
		t.Fatalf("reload of a free lock: %d, want 7", code)
	}
}

// --listen on an etcd lock: /healthz shows the lease, /metrics its
// renewals, TTL and deadline.
func TestLeaseHealthAndMetrics(t *testing.T) {
	name := "metrics-" + fmt.Sprint(time.Now().UnixNano())
	h := start(t, "run", "--etcd", endpoint, "--ttl", "3s", "--lease-grace", "500ms", "--listen", "127.0.0.1:0",
		"--name", name, "--", "sleep", "300")
	var addr string
	guardtest.Eventually(t, "the health server's address", func() bool {
		addr = listenAddr(h.cmd.Process.Pid)
		return addr != ""
	})
	get := func(path string) string {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	guardtest.Eventually(t, "a renewal in /metrics", func() bool {
		return strings.Contains(get("/metrics"), `guard_lease_renewals_total{result="success"} `) &&
			!strings.Contains(get("/metrics"), `guard_lease_renewals_total{result="success"} 0`)
	})
	guardtest.Eventually(t, "the server's version in /metrics", func() bool {
		return strings.Contains(get("/metrics"), `guard_lease_server_info{cluster_id="`)
	})
	m := get("/metrics")
	for _, want := range []string{"guard_lease_ttl_seconds 3", "guard_lease_deadline_timestamp_seconds ", "guard_lease_jeopardy 0",
		"guard_lease_renewal_rtt_seconds_count ", `version="3.7.3"} 1`, `guard_lease_lost_total{reason="deadline"} 0`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if hz := get("/healthz"); !strings.Contains(hz, `"lease":{"ttl_seconds":3,`) {
		t.Errorf("/healthz: %s", hz)
	}
}

// listenAddr finds the TCP port pid listens on, from /proc/net/tcp and its
// descriptors.
func listenAddr(pid int) string {
	inodes := map[string]bool{}
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, e := range ents {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	b, _ := os.ReadFile("/proc/net/tcp")
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && f[3] == "0A" && inodes[f[9]] { // 0A: LISTEN
			local := strings.Split(f[1], ":")
			port, _ := strconv.ParseUint(local[1], 16, 16)
			return fmt.Sprintf("127.0.0.1:%d", port)
		}
	}
	return ""
}

// stop --force breaks the lock of a holder cut off from etcd: its lease is
// revoked at once, but the next holder waits one TTL (the take-over delay),
// by which time the cut-off holder's own deadline has killed its tree: the
// witness is free when the standby's job takes it.
func TestForceStopWaitsOutTheDelay(t *testing.T) {
	guardtest.RequirePeer(t, "flock", "util-linux")
	dir := t.TempDir()
	name := "force-" + fmt.Sprint(time.Now().UnixNano())
	witness, ready := filepath.Join(dir, "witness"), filepath.Join(dir, "ready")
	px := etcdtest.NewProxy(t, endpoint)
	job := fmt.Sprintf(`flock -n %s sh -c 'trap "" TERM; (trap "" TERM; sleep 300) & touch %s; wait'`, witness, ready)
	h := start(t, "run", "--etcd", px.Addr(), "--ttl", "4s", "--lease-grace", "1s", "--name", name, "--", "sh", "-c", job)
	guardtest.Eventually(t, "the holder's job", func() bool { return exists(ready) })
	px.Blackhole() // the holder cannot hear of the revocation
	if code, out, errs := run(t, "stop", "--force", "--etcd", endpoint, "--name", name); code != 0 || !strings.Contains(out, "broke the lock") {
		t.Fatalf("stop --force: %d %q %q", code, out, errs)
	}
	if code, _, errs := run(t, "run", "--etcd", endpoint, "--name", name, "--", "true"); code != 75 {
		t.Fatalf("a run during the take-over delay: exit %d (%s), want 75", code, errs)
	}
	s := start(t, "run", "--etcd", endpoint, "--wait", "60s", "--name", name, "--", "flock", "-n", "-E", "99", witness, "true")
	if code := s.wait(t); code != 0 {
		t.Fatalf("standby exit %d (99: overlapped the cut-off holder's tree); %s", code, s.stderr.String())
	}
	if code := h.wait(t); code != 69 {
		t.Fatalf("cut-off holder exit %d, want 69; %s", code, h.stderr.String())
	}
	if code, _, errs := run(t, "stop", "--force", "--name", name, "--etcd", endpoint); code != 0 {
		t.Fatalf("stop --force of a free lock: %d %s", code, errs)
	}
}

// Two "hosts": the holder runs under another host name (a UTS namespace).
// status, from this host, names that host; stop from this host stops it;
// and status is 4 (unknown) when etcd cannot be reached.
func TestAcrossHosts(t *testing.T) {
	unshare := guardtest.RequirePeer(t, "unshare", "util-linux")
	if os.Geteuid() != 0 {
		guardtest.Missing(t, "a UTS namespace needs root")
	}
	dir := t.TempDir()
	name := "hosts-" + fmt.Sprint(time.Now().UnixNano())
	ready := filepath.Join(dir, "ready")
	h := startProg(t, unshare, "--uts", "sh", "-c", fmt.Sprintf(`hostname guard-test-host-b && exec %s run --etcd %s --name %s -- sh -c 'touch %s; exec sleep 300'`,
		bin, endpoint, name, ready))
	guardtest.Eventually(t, "the holder's job", func() bool { return exists(ready) })
	if code, out, errs := run(t, "status", "--etcd", endpoint, "--name", name); code != 0 || !strings.Contains(out, "on host guard-test-host-b") {
		t.Fatalf("status: %d %q %q, want 0 naming the other host", code, out, errs)
	}
	if code, out, errs := run(t, "stop", "--etcd", endpoint, "--name", name); code != 0 || !strings.Contains(out, "guard-test-host-b") {
		t.Fatalf("stop: %d %q %q", code, out, errs)
	}
	h.wait(t)
	if code, _, errs := run(t, "status", "--etcd", "127.0.0.1:1", "--etcd-dial-timeout", "1s", "--name", name); code != 4 {
		t.Fatalf("status with etcd unreachable: %d %s, want 4", code, errs)
	}
}

// A holder key that holds no guard record (another program's, or forged):
// status says held (0); stop and reload refuse it (1) instead of calling
// the lock free.
func TestForeignHolderKey(t *testing.T) {
	name := "foreign-" + fmt.Sprint(time.Now().UnixNano())
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Revoke(context.Background(), g.ID)
	if _, err := cli.Put(ctx, fmt.Sprintf("/guard/%s/%016x", name, int64(g.ID)), "not a guard record", clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := run(t, "status", "--etcd", endpoint, "--name", name); code != 0 || !strings.Contains(out, "no guard record") {
		t.Fatalf("status: %d %q, want 0 (held) saying it is no guard record", code, out)
	}
	for _, cmd := range []string{"stop", "reload"} {
		if code, out, errs := run(t, cmd, "--etcd", endpoint, "--name", name); code != 1 {
			t.Fatalf("%s: %d %q %q, want 1", cmd, code, out, errs)
		}
	}
	if code, _, _ := run(t, "run", "--etcd", endpoint, "--name", name, "--", "true"); code != 75 {
		t.Fatalf("run against the foreign holder: %d, want 75", code)
	}
}

// --min-interval on an etcd lock: the last success travels in the lock's
// last record, so a second run within the interval (from any host) exits 0
// without running the job, and a failure does not count as a success.
func TestMinIntervalThroughEtcd(t *testing.T) {
	dir := t.TempDir()
	name := "daily-" + fmt.Sprint(time.Now().UnixNano())
	ran := filepath.Join(dir, "ran")
	runJob := func(exit string) int {
		code, _, errs := run(t, "run", "--etcd", endpoint, "--name", name, "--min-interval", "1h", "--", "sh", "-c", "echo x >> "+ran+"; exit "+exit)
		t.Logf("exit %d %s", code, errs)
		return code
	}
	runs := func() int { b, _ := os.ReadFile(ran); return strings.Count(string(b), "x") }
	if code := runJob("1"); code != 1 || runs() != 1 {
		t.Fatalf("a failure: exit %d, %d runs", code, runs())
	}
	if code := runJob("0"); code != 0 || runs() != 2 {
		t.Fatalf("after a failure the job runs: exit %d, %d runs", code, runs())
	}
	if code := runJob("0"); code != 0 || runs() != 2 {
		t.Fatalf("inside the interval: exit %d, %d runs; want 0 and no run", code, runs())
	}
}
