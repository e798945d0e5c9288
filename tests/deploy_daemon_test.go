package tests

// The example daemon and guard, run as the deploy files run them: install
// paths mapped to built binaries, a free port for --listen, the endpoints.

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/guardtest"
)

// depExampleExists reports whether cmd/example has been written yet.
func depExampleExists(t *testing.T) bool {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(depRepo(t), "cmd", "example", "*.go"))
	return len(m) > 0
}

// depExampleBin builds cmd/example once (exampleBinary), or skips the test
// (never fails it, GUARD_REQUIRE_PEERS or not) while cmd/example does not
// exist yet.
func depExampleBin(t *testing.T) string {
	t.Helper()
	if !depExampleExists(t) {
		t.Skip("cmd/example does not exist yet: skipping the checks that run the example daemon")
	}
	return exampleBinary(t)
}

// depPathMap maps container (or host install) paths to host paths.
type depPathMap map[string]string

// apply maps one argument: a path equal to, or under, a mapped path, also
// as the value of a --flag=value.
func (m depPathMap) apply(s string) string {
	if k, v, ok := strings.Cut(s, "="); ok && strings.HasPrefix(k, "-") {
		return k + "=" + m.apply(v)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	for _, k := range keys {
		if s == k {
			return m[k]
		}
		if strings.HasPrefix(s, k+"/") {
			return m[k] + s[len(k):]
		}
	}
	return s
}

func (m depPathMap) argv(a []string) []string {
	out := make([]string, len(a))
	for i, s := range a {
		out[i] = m.apply(s)
	}
	return out
}

// depListen replaces the value of --listen in argv with a free loopback
// port, returning the new argv, the port written in the file and the
// address to use.
func depListen(t *testing.T, argv []string) ([]string, string, string) {
	t.Helper()
	argv = slices.Clone(argv)
	i := slices.Index(argv, "--listen")
	if i < 0 || i+1 >= len(argv) {
		t.Fatalf("%q: no --listen", argv)
	}
	_, port, err := net.SplitHostPort(argv[i+1])
	if err != nil {
		t.Fatalf("--listen %q: %v", argv[i+1], err)
	}
	addr := healthAddr(t)
	argv[i+1] = addr
	return argv, port, addr
}

var depHTTP = &http.Client{Timeout: 3 * time.Second}

func depGet200(url string) bool {
	resp, err := depHTTP.Get(url)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func depStart(t *testing.T, env []string, argv ...string) *proc {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	return p
}

// depServes waits until addr answers 200 on /readyz, then checks the other
// endpoints the deploy files use.
func depServes(t *testing.T, p *proc, addr string) {
	t.Helper()
	guardtest.Eventually(t, "/readyz 200 on "+addr, func() bool {
		if p.exited() {
			t.Fatalf("%v exited %d before it was ready:\n%s", p.cmd.Args, p.cmd.ProcessState.ExitCode(), p.stderr.String())
		}
		return depGet200("http://" + addr + "/readyz")
	})
	for _, path := range []string{"/livez", "/healthz", "/metrics"} {
		if !depGet200("http://" + addr + path) {
			t.Errorf("%s: not 200", path)
		}
	}
}
