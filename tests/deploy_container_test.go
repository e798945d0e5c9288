package tests

// The container image: static binaries, the final stage's settings, and
// its ENTRYPOINT+CMD run as PID 1 of a PID namespace.

import (
	"debug/elf"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/guardkit/guard/internal/guardtest"
)

// depContainer maps the final image's files to the host: the statically
// built binaries, the COPYed context files, and a fresh directory for each
// directory the build stage made (the lock directory).
func depContainer(t *testing.T, d *dockerfile) depPathMap {
	t.Helper()
	built := depStaticBuild(t, d)
	m := depPathMap{}
	for _, c := range d.copies {
		for _, src := range c.srcs {
			dest := c.dest
			if strings.HasSuffix(dest, "/") {
				dest += filepath.Base(src)
			}
			switch {
			case c.from == "":
				m[dest] = filepath.Join(depRepo(t), src)
			case built[src] != "":
				m[dest] = built[src]
			case strings.HasSuffix(src, "example") && !depExampleExists(t):
				// not built yet; example checks skip
			default:
				dir := filepath.Join(t.TempDir(), filepath.Base(dest))
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				m[dest] = dir
			}
		}
	}
	return m
}

// The Dockerfile's build makes static binaries: no dynamic loader, no
// shared libraries, and they run.
func TestDeployContainerStaticBuild(t *testing.T) {
	d := depDockerfile(t)
	built := depStaticBuild(t, d)
	if len(built) == 0 {
		t.Fatal("the Dockerfile builds nothing")
	}
	for out, bin := range built {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s: has PT_INTERP (dynamically linked)", out)
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("%s: needs shared libraries %v", out, libs)
		}
		f.Close()
	}
	bin := built["/out/guard"]
	if bin == "" {
		t.Fatalf("the Dockerfile does not build /out/guard: %v", built)
	}
	if r := run(t, bin, "version"); r.code != 0 || r.stdout == "" {
		t.Errorf("static guard version: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	if file, err := exec.LookPath("file"); err == nil {
		out, _ := exec.Command(file, bin).Output()
		if !regexp.MustCompile(`statically linked|static-pie linked`).Match(out) {
			t.Errorf("file(1) does not call it static: %s", out)
		}
	}
	if !depExampleExists(t) {
		t.Log("cmd/example does not exist yet: only guard built")
	}
}

// The final image as the Dockerfile describes it: non-root, the lock
// directory in GUARD_DIR made by the build and owned by that user, guard
// as the ENTRYPOINT, exec forms throughout.
func TestDeployContainerImage(t *testing.T) {
	d := depDockerfile(t)
	if d.user == "" || strings.HasPrefix(d.user, "0") || strings.HasPrefix(d.user, "root") {
		t.Errorf("USER %q: want a non-root user", d.user)
	}
	gd := d.env["GUARD_DIR"]
	if gd == "" {
		t.Fatal("no ENV GUARD_DIR: guard as a non-root user has no default lock directory")
	}
	owned := false
	for _, c := range d.copies {
		owned = owned || (c.dest == gd && c.chown != "" && strings.HasPrefix(d.user, strings.Split(c.chown, ":")[0]))
	}
	if !owned {
		t.Errorf("GUARD_DIR %s is not COPYed --chown to USER %s: the user could not create lock files there", gd, d.user)
	}
	if filepath.Base(d.entrypoint[0]) != "guard" || d.entrypoint[1] != "run" || d.entrypoint[len(d.entrypoint)-1] != "--" {
		t.Errorf("ENTRYPOINT %q: want guard run ... --", d.entrypoint)
	}
	if filepath.Base(d.healthcheck[0]) != "guard" || d.healthcheck[1] != "status" {
		t.Errorf("HEALTHCHECK %q: want guard status", d.healthcheck)
	}
	_, port, err := net.SplitHostPort(depFlag(d.cmd, "--listen"))
	if err != nil || !slices.Contains(d.expose, port) {
		t.Errorf("CMD --listen port %q (%v) is not EXPOSEd (%v)", port, err, d.expose)
	}
	ignore := depRead(t, "container/Dockerfile.dockerignore")
	for _, c := range d.copies {
		for _, src := range c.srcs {
			if c.from == "" && !strings.Contains(ignore, "!"+src) {
				t.Errorf("COPY %s: not let through by Dockerfile.dockerignore", src)
			}
		}
	}
}

// The container's ENTRYPOINT+CMD as PID 1 of a PID namespace (what a
// container runtime does): the example becomes ready, guard is PID 1, the
// HEALTHCHECK passes inside the container, SIGTERM to PID 1 stops it all
// with 0, and the HEALTHCHECK fails once it has stopped (and before).
func TestDeployContainerRunsAsPID1(t *testing.T) {
	unshare := guardtest.RequirePeer(t, "unshare", "util-linux")
	nsenter := guardtest.RequirePeer(t, "nsenter", "util-linux")
	if os.Geteuid() != 0 {
		t.Skip("unshare --pid needs root")
	}
	d := depDockerfile(t)
	depExampleBin(t) // skips while cmd/example does not exist
	m := depContainer(t, d)
	argv, _, addr := depListen(t, m.argv(append(slices.Clone(d.entrypoint), d.cmd...)))
	var env []string
	for k, v := range d.env {
		env = append(env, k+"="+m.apply(v))
	}
	health := m.argv(d.healthcheck)
	healthcheck := func(inside int) result {
		t.Helper()
		a := health
		if inside > 0 { // as docker runs it: in the container's namespaces
			a = append([]string{nsenter, "--target", strconv.Itoa(inside), "--pid", "--mount", "--"}, health...)
		}
		cmd := exec.Command(a[0], a[1:]...)
		cmd.Env = append(os.Environ(), env...)
		out, _ := cmd.CombinedOutput()
		return result{code: cmd.ProcessState.ExitCode(), stdout: string(out)}
	}
	if r := healthcheck(0); r.code == 0 {
		t.Errorf("HEALTHCHECK before the start: exit 0, want non-zero")
	}

	p := depStart(t, env, append([]string{unshare, "--pid", "--fork", "--mount-proc", "--kill-child", "--"}, argv...)...)
	init := nsInit(t, p.cmd.Process.Pid)
	depServes(t, p, addr)
	if r := healthcheck(init); r.code != 0 {
		t.Errorf("HEALTHCHECK %q in the container: exit %d, want 0: %s", d.healthcheck, r.code, r.stdout)
	}
	// guard holds its own lock as PID 1 of the namespace (lock_pid: the
	// locker the kernel lists in /proc/locks).
	st := exec.Command(nsenter, "--target", strconv.Itoa(init), "--pid", "--mount", "--", m.apply(d.entrypoint[0]), "status", "--json", "--name", depFlag(d.entrypoint, "--name"))
	st.Env = append(os.Environ(), env...)
	out, _ := st.Output()
	var rec struct {
		Held    bool `json:"held"`
		LockPID int  `json:"lock_pid"`
	}
	if err := json.Unmarshal(out, &rec); err != nil || !rec.Held || rec.LockPID != 1 {
		t.Errorf("guard status --json in the container: %v %s: want the lock held by PID 1", err, out)
	}

	syscall.Kill(init, syscall.SIGTERM) // docker stop
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM to PID 1, want 0 (the example's own):\n%s", code, p.stderr.String())
	}
	if r := healthcheck(0); r.code == 0 {
		t.Errorf("HEALTHCHECK after the stop: exit 0, want non-zero: %s", r.stdout)
	}
}
