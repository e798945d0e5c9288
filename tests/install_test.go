package tests

// The kit as Go users get it: go install from the module path at a
// version, the version make stamps, and another module importing the kit.
// No network: modules come from a file proxy made from this checkout and
// from the machine's module cache.

import (
	"archive/zip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/guardtest"
)

const modPath = "github.com/guardkit/guard"

// goEnv is a go command environment with a clean GOPATH and module cache,
// modules from the file proxies given and the machine's module cache, no
// checksum database and no toolchain download.
func goEnv(t *testing.T, proxies ...string) []string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(strings.TrimSpace(string(out)), "cache", "download")
	var urls []string
	for _, p := range append(proxies, cache) {
		urls = append(urls, "file://"+p)
	}
	gopath := t.TempDir()
	env := []string{}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "GO") || strings.HasPrefix(e, "GOCACHE=") || strings.HasPrefix(e, "GOROOT=") {
			env = append(env, e)
		}
	}
	// The module cache's files are read-only: t.TempDir could not remove them.
	cleanup := gopath
	t.Cleanup(func() {
		c := exec.Command("go", "clean", "-modcache")
		c.Env = append(os.Environ(), "GOPATH="+cleanup, "GOMODCACHE="+filepath.Join(cleanup, "pkg", "mod"))
		c.Run()
	})
	return append(env, "GOPATH="+gopath, "GOMODCACHE="+filepath.Join(gopath, "pkg", "mod"),
		"GOBIN="+filepath.Join(gopath, "bin"), "GOPROXY="+strings.Join(urls, ","),
		"GOSUMDB=off", "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
}

// moduleProxy writes a file proxy (GOPROXY=file://DIR) serving this
// checkout as modPath@version: the files git tracks or would track, less
// the nested etcd module.
func moduleProxy(t *testing.T, version string) string {
	t.Helper()
	repo := depRepo(t)
	out, err := exec.Command("git", "-C", repo, "ls-files", "-co", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	proxy := t.TempDir()
	dir := filepath.Join(proxy, modPath, "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	zf, err := os.Create(filepath.Join(dir, version+".zip"))
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(zf)
	n := 0
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(f, "etcd/") || strings.HasPrefix(f, "bin/") {
			continue // another module; build output
		}
		fi, err := os.Lstat(filepath.Join(repo, f))
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the work tree; links are not in module zips
		}
		w, err := zw.Create(modPath + "@" + version + "/" + f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(repo, f))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
		n++
	}
	if err := zw.Close(); err != nil || zf.Close() != nil {
		t.Fatalf("zip: %v", err)
	}
	mod, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"list":            version + "\n",
		version + ".mod":  string(mod),
		version + ".info": fmt.Sprintf(`{"Version":%q,"Time":%q}`, version, time.Now().UTC().Format(time.RFC3339)),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("proxy: %s@%s, %d files", modPath, version, n)
	return proxy
}

func goCmd(t *testing.T, env []string, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Env, cmd.Dir = env, dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// go install MODULE/cmd/guard@VERSION, from a clean GOPATH, as the README
// says; the installed guard reports that version.
func TestGoInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds guard from a module proxy")
	}
	const version = "v0.99.0-installtest"
	env := goEnv(t, moduleProxy(t, version))
	goCmd(t, env, t.TempDir(), "install", modPath+"/cmd/guard@"+version)
	bin := ""
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "GOBIN="); ok {
			bin = filepath.Join(v, "guard")
		}
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := run(t, bin, args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "guard "+version+" (") {
			t.Errorf("installed guard %s: exit %d, %q; want guard %s", args[0], r.code, r.stdout, version)
		}
		if strings.Contains(r.stdout, "revision") {
			t.Errorf("a module from a proxy has no VCS revision, yet: %q", r.stdout)
		}
	}
}

// make build stamps git describe (here VERSION=) into guard and guard-etcd
// with -ldflags -X main.version.
func TestMakeBuildVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds guard and guard-etcd")
	}
	bin := t.TempDir()
	const version = "v9.9.9-maketest"
	if out, err := exec.Command("make", "-C", depRepo(t), "build", "BIN="+bin, "VERSION="+version).CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	for _, p := range []string{"guard", "guard-etcd"} {
		r := run(t, filepath.Join(bin, p), "version")
		if r.code != 0 || !strings.HasPrefix(r.stdout, p+" "+version+" (") {
			t.Errorf("%s version: exit %d, %q; want %s %s", p, r.code, r.stdout, p, version)
		}
	}
}

// A module of a user's imports the kit by its module path (a replace
// points at this checkout), builds a program from instance, daemon and
// health, and runs it.
func TestImportKit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program in another module")
	}
	dir := t.TempDir()
	gomod := fmt.Sprintf("module example.com/kituser\n\ngo 1.26.0\n\nrequire %s v0.0.0\n\nreplace %s => %s\n", modPath, modPath, depRepo(t))
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(kitUser), 0o644); err != nil {
		t.Fatal(err)
	}
	env := goEnv(t)
	goCmd(t, env, dir, "build", "-o", "kituser", ".")
	locks := lockDir(t)
	r := run(t, filepath.Join(dir, "kituser"), filepath.Join(locks, "kit.lock"))
	want := []string{"locked token=1", "second: busy", "readyz: 200", "sd_notify: ", "released"}
	for _, w := range want {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("kituser: no %q in its output\n%s%s", w, r.stdout, r.stderr)
		}
	}
	if r.code != 0 {
		t.Errorf("kituser: exit %d", r.code)
	}
}

// kitUser is the user's program: the lock, a second try that finds it
// busy, the health server saying ready, sd_notify without systemd.
const kitUser = `package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/guardkit/guard/daemon"
	"github.com/guardkit/guard/health"
	"github.com/guardkit/guard/instance"
)

func main() {
	ctx := context.Background()
	lk, err := instance.New(instance.Options{Path: os.Args[1], Name: "kit"})
	check(err)
	le, err := lk.TryLock(ctx)
	check(err)
	fmt.Println("locked token=" + fmt.Sprint(le.Token()))

	other, err := instance.New(instance.Options{Path: os.Args[1], Name: "kit"})
	check(err)
	if _, err := other.TryLock(ctx); errors.Is(err, instance.ErrHeld) {
		fmt.Println("second: busy")
	}

	var st health.State
	st.SetLockPath(os.Args[1])
	st.Acquired(os.Getpid(), le.Token(), le.Since(), 0)
	st.SetReady(true)
	srv := health.NewServer(health.Options{Addr: "127.0.0.1:0", Lock: &st, Reloads: &st, Ready: st.Ready,
		Gatherer: health.NewRegistry(&st, health.BuildInfo{Version: "kituser"})})
	addr, err := srv.Start(ctx)
	check(err)
	resp, err := http.Get("http://" + addr.String() + "/readyz")
	check(err)
	resp.Body.Close()
	fmt.Println("readyz:", resp.StatusCode)
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	check(srv.Shutdown(sctx))

	sent, err := daemon.NotifyReady()
	check(err)
	fmt.Println("sd_notify:", sent)
	check(le.Release())
	fmt.Println("released")
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`

// go build in a git checkout: guard version reports the version (a
// pseudo-version without a tag) and the revision the go command stamps from git.
func TestBuildInCheckoutVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("clones the repository and builds guard")
	}
	guardtest.RequirePeer(t, "git", "git")
	clone := filepath.Join(t.TempDir(), "guard")
	if out, err := exec.Command("git", "clone", "-q", depRepo(t), clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	head, err := exec.Command("git", "-C", clone, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "guard")
	cmd := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./cmd/guard")
	cmd.Dir, cmd.Env = clone, append(os.Environ(), "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	r := run(t, bin, "version")
	// v0.0.0-DATE-REVISION without a tag, the tag's version on a tag.
	rev := strings.TrimSpace(string(head))
	if !strings.HasPrefix(r.stdout, "guard v") || !strings.Contains(r.stdout, "revision "+rev) {
		t.Errorf("guard version built in a checkout at %s: %q", rev, r.stdout)
	}
}
