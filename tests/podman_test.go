package tests

// The images built and run for real with podman: the guard image (make
// image, FROM scratch) and the example image (deploy/container/Dockerfile's
// final stage on a FROM scratch base, since no registry is reachable). guard
// is PID 1: podman exec guard status, podman stop, exit codes, HEALTHCHECK,
// orphans reaped, as root and as a non-root user.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/guardtest"
)

// podmanGlobal are podman's options on these machines: Debian's runc (crun
// refuses the hybrid cgroup layout) and cgroupfs (no systemd).
var podmanGlobal = []string{"--runtime", "runc", "--cgroup-manager", "cgroupfs"}

// podmanRun are the options of every container: no network, and limits
// set explicitly (raising them is not permitted here).
var podmanRun = []string{"--network=none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"}

var podmanCheck struct {
	once sync.Once
	err  string
}

// requirePodman skips (fails, in CI) unless podman can run a container here.
func requirePodman(t *testing.T) {
	t.Helper()
	guardtest.RequirePeer(t, "podman", "podman")
	guardtest.RequirePeer(t, "runc", "runc")
	podmanCheck.once.Do(func() {
		out, err := exec.Command("podman", append(podmanGlobal, "info", "--format", "{{.Host.OCIRuntime.Name}}")...).CombinedOutput()
		if err != nil {
			podmanCheck.err = fmt.Sprintf("podman info: %v: %s", err, out)
		}
	})
	if podmanCheck.err != "" {
		guardtest.Missing(t, "podman cannot run here: "+podmanCheck.err)
	}
}

// podman runs podman with the global options.
func podman(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, "podman", append(slicesClone(podmanGlobal), args...)...)
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// mustPodman runs podman and fails the test unless it exits 0.
func mustPodman(t *testing.T, args ...string) string {
	t.Helper()
	r := podman(t, args...)
	if r.code != 0 {
		t.Fatalf("podman %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// uniqueName is a container or image name no other test run uses.
func uniqueName(what string) string {
	return fmt.Sprintf("guard-test-%s-%d-%d", what, os.Getpid(), time.Now().UnixNano())
}

// removeImage removes the image when the test ends.
func removeImage(t *testing.T, image string) {
	t.Cleanup(func() { exec.Command("podman", append(slicesClone(podmanGlobal), "rmi", "-f", image)...).Run() })
}

// startContainer runs image detached with args and removes it when the
// test ends.
func startContainer(t *testing.T, image string, opts []string, args ...string) string {
	t.Helper()
	name := uniqueName("c")
	t.Cleanup(func() {
		exec.Command("podman", append(slicesClone(podmanGlobal), "rm", "-f", "-t", "0", name)...).Run()
	})
	all := append([]string{"run", "-d", "--name", name}, podmanRun...)
	all = append(append(all, opts...), image)
	mustPodman(t, append(all, args...)...)
	return name
}

// staticBuild builds a package of this module statically into dir.
func staticBuild(t *testing.T, pkg, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// buildGuardImage runs make image, as a user does, and returns the image.
func buildGuardImage(t *testing.T, version string) string {
	t.Helper()
	image := "localhost/" + uniqueName("guard") + ":test"
	removeImage(t, image)
	cmd := exec.Command("make", "-C", depRepo(t), "image", "BIN="+t.TempDir(), "VERSION="+version,
		"IMAGE="+image, "CONTAINER=podman "+strings.Join(podmanGlobal, " "))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	return image
}

// The guard image: guard alone, static, FROM scratch, guard as the
// ENTRYPOINT; it runs as root and as any user.
func TestImageGuard(t *testing.T) {
	requirePodman(t)
	const version = "v0.0.0-imagetest"
	image := buildGuardImage(t, version)
	var cfg []struct {
		Size   int64
		Config struct {
			Entrypoint []string
			Cmd        []string
			Env        []string
		}
		RootFS struct{ Layers []string }
	}
	if err := json.Unmarshal([]byte(mustPodman(t, "image", "inspect", image)), &cfg); err != nil || len(cfg) != 1 {
		t.Fatalf("podman image inspect: %v", err)
	}
	c := cfg[0]
	t.Logf("%s: %.1f MB, %d layer(s)", image, float64(c.Size)/1e6, len(c.RootFS.Layers))
	if strings.Join(c.Config.Entrypoint, " ") != "/usr/local/bin/guard" {
		t.Errorf("ENTRYPOINT %q, want [/usr/local/bin/guard]", c.Config.Entrypoint)
	}
	if len(c.RootFS.Layers) != 1 {
		t.Errorf("%d layers, want 1 (FROM scratch, one COPY)", len(c.RootFS.Layers))
	}
	if c.Size > 20e6 {
		t.Errorf("the image is %d bytes: more than guard alone", c.Size)
	}
	// The files: root's, nothing writable by others but the sticky lock
	// directory and /tmp.
	root := mustPodman(t, "image", "mount", image)
	t.Cleanup(func() { podman(t, "image", "unmount", image) })
	var paths []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		paths = append(paths, rel)
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 0 || st.Gid != 0 {
			t.Errorf("%s: owned by %d:%d, want root", rel, st.Uid, st.Gid)
		}
		sticky := rel == "run/guard" || rel == "tmp"
		if ww := fi.Mode()&0o002 != 0; ww != sticky || sticky && fi.Mode()&os.ModeSticky == 0 {
			t.Errorf("%s: mode %v", rel, fi.Mode())
		}
		return nil
	})
	want := ". etc etc/group etc/passwd run run/guard tmp usr usr/local usr/local/bin usr/local/bin/guard"
	if got := strings.Join(paths, " "); got != want {
		t.Errorf("the image holds %s, want %s", got, want)
	}
	for _, user := range []string{"", "65534", "12345:12345"} {
		opts := []string{"--rm"}
		if user != "" {
			opts = append(opts, "--user", user)
		}
		args := append(append(append([]string{"run"}, podmanRun...), opts...), image, "version")
		r := podman(t, args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "guard "+version+" ") {
			t.Errorf("user %q: podman run %s version: exit %d, %q %q; want guard %s", user, image, r.code, r.stdout, r.stderr, version)
		}
		// The default lock directory works for every user.
		args = append(append(append([]string{"run"}, podmanRun...), opts...), image,
			"run", "--name", "probe", "--", "/usr/local/bin/guard", "status", "--name", "probe")
		if r := podman(t, args...); r.code != 0 {
			t.Errorf("user %q: guard run -- guard status in the image: exit %d\n%s%s", user, r.code, r.stdout, r.stderr)
		}
	}
	// No arguments: the usage (CMD ["help"]), exit 0.
	if r := podman(t, append(append([]string{"run", "--rm"}, podmanRun...), image)...); r.code != 0 || !strings.Contains(r.stdout, "guard run") {
		t.Errorf("podman run %s: exit %d, %q", image, r.code, r.stdout)
	}
}

// An image made FROM the guard image with a job in it, as its README says:
// guard is PID 1, reaps orphans, answers podman exec guard status, passes
// podman stop's SIGTERM on and exits with the job's status.
func TestImageGuardAsPID1(t *testing.T) {
	requirePodman(t)
	base := buildGuardImage(t, "v0.0.0-imagetest")
	ctx := t.TempDir()
	staticBuild(t, "github.com/guardkit/guard/tests/testdata/pid1job", filepath.Join(ctx, "pid1job"))
	containerfile := fmt.Sprintf("FROM %s\nCOPY pid1job /usr/local/bin/pid1job\nCMD [\"run\", \"--name\", \"job\", \"--\", \"/usr/local/bin/pid1job\"]\n", base)
	if err := os.WriteFile(filepath.Join(ctx, "Containerfile"), []byte(containerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	image := "localhost/" + uniqueName("job") + ":test"
	removeImage(t, image)
	mustPodman(t, "build", "-q", "-t", image, ctx)

	for _, tc := range []struct {
		name string
		opts []string
	}{
		{"root", nil},
		{"nobody", []string{"--user", "65534"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startContainer(t, image, tc.opts)
			// "ready" means the orphan the job left has been reaped.
			guardtest.Eventually(t, "the job to be ready (its orphan reaped by PID 1)", func() bool {
				return strings.Contains(podman(t, "logs", c).stdout, "ready: orphan")
			})
			if pid1 := mustPodman(t, "exec", c, "/usr/local/bin/guard", "status", "--name", "job", "--json"); !strings.Contains(pid1, `"pid": 1,`) && !strings.Contains(pid1, `"pid":1,`) {
				t.Errorf("guard status --json: the holder is not PID 1: %s", pid1)
			}
			if r := podman(t, "exec", c, "/usr/local/bin/guard", "status", "--name", "job"); r.code != 0 {
				t.Errorf("podman exec guard status: exit %d, %q %q", r.code, r.stdout, r.stderr)
			}
			began := time.Now()
			mustPodman(t, "stop", "-t", "20", c)
			t.Logf("podman stop took %v", time.Since(began).Round(time.Millisecond))
			if code := mustPodman(t, "inspect", "-f", "{{.State.ExitCode}}", c); code != "0" {
				t.Errorf("exit code after podman stop: %s, want 0 (the job's own, on SIGTERM)", code)
			}
			if logs := podman(t, "logs", c).stdout; !strings.Contains(logs, "TERM") {
				t.Errorf("the job did not get podman stop's SIGTERM: %q", logs)
			}
		})
	}
	// The job's exit status is the container's.
	args := append(append([]string{"run", "--rm"}, podmanRun...), image, "run", "--name", "job", "--", "/usr/local/bin/pid1job", "exit", "3")
	if r := podman(t, args...); r.code != 3 {
		t.Errorf("a job that exits 3: podman run exit %d, want 3 (%q)", r.code, r.stderr)
	}
}

// The example image (deploy/container/Dockerfile), built for real: its
// build stage's go build lines run here (TestDeployContainerStaticBuild),
// its final stage's COPY, ENV, USER, ENTRYPOINT, CMD and HEALTHCHECK go
// into a FROM scratch image with the files the distroless base provides
// (passwd with nonroot, /tmp).
func TestImageExample(t *testing.T) {
	requirePodman(t)
	d := depDockerfile(t)
	m := depContainer(t, d)
	ctx := t.TempDir()
	var b strings.Builder
	b.WriteString("FROM scratch\nCOPY base/ /\n")
	base := filepath.Join(ctx, "base")
	for _, dir := range []string{"etc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(base, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(base, "tmp"), 0o1777)
	copyFile(t, filepath.Join(depRepo(t), "deploy/container/guard/passwd"), filepath.Join(base, "etc/passwd"), 0o644)
	copyFile(t, filepath.Join(depRepo(t), "deploy/container/guard/group"), filepath.Join(base, "etc/group"), 0o644)
	for i, c := range d.copies {
		for _, src := range c.srcs {
			dest := c.dest
			if strings.HasSuffix(dest, "/") {
				dest += filepath.Base(src)
			}
			host, ok := m[dest]
			if !ok {
				t.Skipf("%s is not built yet", dest)
			}
			rel := fmt.Sprintf("copy%d/%s", i, filepath.Base(dest))
			fi, err := os.Stat(host)
			if err != nil {
				t.Fatal(err)
			}
			if fi.IsDir() {
				if err := os.MkdirAll(filepath.Join(ctx, rel), fi.Mode().Perm()); err != nil {
					t.Fatal(err)
				}
				os.Chmod(filepath.Join(ctx, rel), fi.Mode().Perm())
			} else {
				os.MkdirAll(filepath.Dir(filepath.Join(ctx, rel)), 0o755)
				copyFile(t, host, filepath.Join(ctx, rel), fi.Mode().Perm())
			}
			chown := ""
			if c.chown != "" {
				chown = "--chown=" + c.chown + " "
			}
			fmt.Fprintf(&b, "COPY %s%s %s\n", chown, rel, dest)
		}
	}
	if d.user != "" {
		fmt.Fprintf(&b, "USER %s\n", d.user)
	}
	for k, v := range d.env {
		fmt.Fprintf(&b, "ENV %s=%s\n", k, v)
	}
	jsonArgs := func(a []string) string { j, _ := json.Marshal(a); return string(j) }
	fmt.Fprintf(&b, "ENTRYPOINT %s\nCMD %s\n", jsonArgs(d.entrypoint), jsonArgs(d.cmd))
	if len(d.healthcheck) > 0 {
		fmt.Fprintf(&b, "HEALTHCHECK --interval=1h CMD %s\n", jsonArgs(d.healthcheck))
	}
	if err := os.WriteFile(filepath.Join(ctx, "Containerfile"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("Containerfile:\n%s", b.String())
	image := "localhost/" + uniqueName("example") + ":test"
	removeImage(t, image)
	// Docker format: the OCI format has no HEALTHCHECK.
	mustPodman(t, "build", "-q", "--format", "docker", "-t", image, ctx)

	c := startContainer(t, image, nil)
	guardtest.Eventually(t, "the HEALTHCHECK to pass", func() bool {
		return podman(t, "healthcheck", "run", c).code == 0
	})
	if r := podman(t, "exec", c, "/usr/local/bin/guard", "status", "--name", "init"); r.code != 0 {
		t.Errorf("guard status --name init (guard as PID 1): exit %d %q", r.code, r.stderr)
	}
	if r := podman(t, "exec", c, "/usr/local/bin/guard", "reload", "--name", "example"); r.code != 0 {
		t.Errorf("guard reload --name example: exit %d %q", r.code, r.stderr)
	}
	began := time.Now()
	mustPodman(t, "stop", "-t", "20", c)
	t.Logf("podman stop took %v", time.Since(began).Round(time.Millisecond))
	if code := mustPodman(t, "inspect", "-f", "{{.State.ExitCode}}", c); code != "0" {
		t.Errorf("exit code after podman stop: %s, want 0\n%s", code, podman(t, "logs", c).stderr)
	}
	// Stopped: the HEALTHCHECK command itself says the daemon is gone.
	if r := podman(t, "healthcheck", "run", c); r.code == 0 {
		t.Errorf("the HEALTHCHECK passes on a stopped container")
	}
}
