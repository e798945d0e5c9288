package tests

import (
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/guardtest"
)

const nobodyUID = 65534

// needRootAndRunuser skips unless the test runs as root with runuser(1), to
// act as the attacker (nobody) and as the root that runs guard.
func needRootAndRunuser(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the attacker is nobody, guard runs as root")
	}
	guardtest.RequirePeer(t, "runuser", "util-linux")
}

// openTempDir returns a fresh root-owned 0755 directory that nobody can
// reach (t.TempDir and its parent are 0700).
func openTempDir(t *testing.T) string {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{base, filepath.Dir(base)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return base
}

// asNobody runs argv as nobody and fails the test if it fails.
func asNobody(t *testing.T, argv ...string) {
	t.Helper()
	if out, err := osexec.Command("runuser", append([]string{"-u", "nobody", "--"}, argv...)...).CombinedOutput(); err != nil {
		t.Fatalf("as nobody %v: %v\n%s", argv, err, out)
	}
}

// planted is the attack: app belongs to nobody, who planted app/locks ->
// target, a root-owned directory holding empty root-owned files.
type planted struct {
	base   string // root's, 0755
	app    string // nobody's
	locks  string // app/locks, nobody's symlink to target
	target string // root's, with the victims
}

func plant(t *testing.T) planted {
	t.Helper()
	needRootAndRunuser(t)
	base := openTempDir(t)
	p := planted{base: base, app: filepath.Join(base, "app"), target: filepath.Join(base, "target")}
	p.locks = filepath.Join(p.app, "locks")
	for _, d := range []string{p.app, p.target} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"x.lock", "x.pid", "out.log", "j.prom"} {
		if err := os.WriteFile(filepath.Join(p.target, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(p.app, nobodyUID, nobodyUID); err != nil {
		t.Fatal(err)
	}
	asNobody(t, "ln", "-s", p.target, p.locks)
	return p
}

// listing describes every entry of dir: name, mode, mtime and content.
func listing(t *testing.T, dir string) string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, de := range des {
		fi, err := os.Lstat(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, de.Name()))
		lines = append(lines, fmt.Sprintf("%s %v %d %q", de.Name(), fi.Mode(), fi.ModTime().UnixNano(), b))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// refusedNaming checks that r is exit code want with one line on stderr
// naming path.
func refusedNaming(t *testing.T, r result, want int, path string) {
	t.Helper()
	if r.code != want || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, path) {
		t.Fatalf("exit %d, stderr %q; want %d and one line naming %s", r.code, r.stderr, want, path)
	}
}

// TestHostilePathsPlantedLink: a user who owns a directory plants a link in
// it to a root-owned directory; guard, run as root, must refuse every path
// through it (exit 78, one line naming the path), run nothing, and create or
// change nothing where the link leads.
func TestHostilePathsPlantedLink(t *testing.T) {
	tests := []struct {
		name string
		args func(p planted, safe string) []string
	}{
		{"lock", func(p planted, safe string) []string {
			return []string{"run", "--lock", filepath.Join(p.locks, "x.lock")}
		}},
		{"textfile-dir", func(p planted, safe string) []string {
			return []string{"run", "--lock", filepath.Join(safe, "x.lock"), "--name", "j", "--textfile-dir", p.locks}
		}},
		{"pidfile", func(p planted, safe string) []string {
			return []string{"run", "--lock", filepath.Join(safe, "x.lock"), "--pidfile", filepath.Join(p.locks, "x.pid")}
		}},
		{"detach output", func(p planted, safe string) []string {
			return []string{"run", "--detach", "--lock", filepath.Join(safe, "x.lock"), "--output", filepath.Join(p.locks, "out.log")}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := plant(t)
			safe := lockDir(t)
			marker := filepath.Join(safe, "job-ran")
			before := listing(t, p.target)
			r := guard(t, append(tt.args(p, safe), "--", "touch", marker)...)
			refusedNaming(t, r, 78, p.app)
			if exists(marker) {
				t.Error("the job ran")
			}
			if after := listing(t, p.target); after != before {
				t.Errorf("the link's target changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// TestHostilePathsOutputLink: --output never follows a link at FILE.
func TestHostilePathsOutputLink(t *testing.T) {
	dir := lockDir(t)
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "out.log")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	r := guard(t, "run", "--detach", "--lock", filepath.Join(dir, "a.lock"), "--output", link, "--", "echo", "leaked")
	refusedNaming(t, r, 78, link)
	time.Sleep(100 * time.Millisecond) // a wrongly started job has had time to write
	if b, _ := os.ReadFile(victim); string(b) != "keep\n" {
		t.Errorf("link target changed to %q", b)
	}
}

// TestHostilePathsOutputOpenDir: --output in a directory that others can
// write without the sticky bit is refused.
func TestHostilePathsOutputOpenDir(t *testing.T) {
	dir := lockDir(t)
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o777)
	marker := filepath.Join(dir, "job-ran")
	r := guard(t, "run", "--detach", "--lock", filepath.Join(dir, "b.lock"), "--output", filepath.Join(open, "out.log"), "--", "touch", marker)
	refusedNaming(t, r, 78, open)
	if exists(marker) || exists(filepath.Join(open, "out.log")) {
		t.Error("the job ran, or the output was created, in a world-writable directory")
	}
}

// TestHostilePathsTrustedLink: a link root owns in a root-owned directory,
// like /var/run -> /run, still works for every path guard writes.
func TestHostilePathsTrustedLink(t *testing.T) {
	base := lockDir(t)
	real := filepath.Join(base, "run")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	varRun := filepath.Join(base, "varrun")
	if err := os.Symlink(real, varRun); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(base, "job-ran")
	r := guard(t, "run", "--lock", filepath.Join(varRun, "x.lock"), "--name", "j", "--pidfile", filepath.Join(varRun, "x.pid"),
		"--textfile-dir", varRun, "--", "touch", marker)
	if r.code != 0 || !exists(marker) {
		t.Fatalf("run through a trusted link: %d %q", r.code, r.stderr)
	}
	for _, f := range []string{"x.lock", "j.prom"} {
		if !exists(filepath.Join(real, f)) {
			t.Errorf("%s not written in %s", f, real)
		}
	}
	r = guard(t, "run", "--detach", "--lock", filepath.Join(varRun, "y.lock"), "--output", filepath.Join(varRun, "out.log"), "--", "echo", "hello")
	if r.code != 0 {
		t.Fatalf("detach with output through a trusted link: %d %q", r.code, r.stderr)
	}
	guardtest.Eventually(t, "the job's output", func() bool { return fileHas(filepath.Join(real, "out.log"), "hello") })
}

// TestHostilePathsTextfileDirMissing: a missing --textfile-dir is refused
// (73) before the job starts, not found out after it ran.
func TestHostilePathsTextfileDirMissing(t *testing.T) {
	dir := lockDir(t)
	marker := filepath.Join(dir, "job-ran")
	r := guard(t, "run", "--lock", filepath.Join(dir, "a.lock"), "--name", "j", "--textfile-dir", filepath.Join(dir, "missing"), "--", "touch", marker)
	refusedNaming(t, r, 73, filepath.Join(dir, "missing"))
	if exists(marker) {
		t.Error("the job ran with a missing --textfile-dir")
	}
}

// TestHostilePathsTextfileDirReadOnly: likewise for a directory guard may
// not write (73), found before the job starts.
func TestHostilePathsTextfileDirReadOnly(t *testing.T) {
	needRootAndRunuser(t)
	// Root writes any directory: guard runs as nobody here.
	base := openTempDir(t)
	bin := filepath.Join(base, "guard")
	copyFile(t, guardBin, bin, 0o755)
	locks, prom := filepath.Join(base, "locks"), filepath.Join(base, "prom")
	for _, d := range []string{locks, prom} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chown(d, nobodyUID, nobodyUID)
	}
	os.Chmod(prom, 0o555)
	marker := filepath.Join(locks, "job-ran")
	cmd := osexec.Command("runuser", "-u", "nobody", "--", bin, "run", "--lock", filepath.Join(locks, "a.lock"),
		"--name", "j", "--textfile-dir", prom, "--", "touch", marker)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.Run()
	refusedNaming(t, result{code: cmd.ProcessState.ExitCode(), stderr: stderr.String()}, 73, prom)
	if exists(marker) {
		t.Error("the job ran with a read-only --textfile-dir")
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestHostilePathsPidfileOfLiveProcess: guard run --pidfile does not take
// over (and later delete) the PID file of another live process.
func TestHostilePathsPidfileOfLiveProcess(t *testing.T) {
	dir := lockDir(t)
	s := sleeper(t)
	pf := filepath.Join(dir, "daemon.pid")
	content := strconv.Itoa(s.cmd.Process.Pid) + "\n"
	if err := os.WriteFile(pf, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "job-ran")
	r := guard(t, "run", "--lock", filepath.Join(dir, "a.lock"), "--pidfile", pf, "--", "touch", marker)
	refusedNaming(t, r, 78, pf)
	if b, _ := os.ReadFile(pf); string(b) != content {
		t.Errorf("PID file changed to %q", b)
	}
	if exists(marker) {
		t.Error("the job ran")
	}
	if !alive(s.cmd.Process.Pid) {
		t.Error("the process the PID file names was hurt")
	}
}

// TestHostilePathsStopKin: stop --pidfile never signals guard's caller: its
// parent, grandparent, or a process of its own process group. The caller is
// a shell standing in for the test process, so that a failure kills the
// shell, not the test.
func TestHostilePathsStopKin(t *testing.T) {
	tests := []struct {
		name   string
		script string // $1: the PID file, $2: guard
	}{
		{"parent", `echo $$ > "$1"; "$2" stop --pidfile "$1" --timeout 2s; echo "guard=$?"`},
		{"grandparent", `echo $$ > "$1"; sh -c '"$@"; exit $?' inner "$2" stop --pidfile "$1" --timeout 2s; echo "guard=$?"`},
		{"process group", `sleep 1000 & echo $! > "$1"; "$2" stop --pidfile "$1" --timeout 2s; echo "guard=$?"; kill -0 $! && echo "alive"; kill -9 $! 2>/dev/null; exit 0`},
		{"itself", `echo $$ > "$1"; exec "$2" stop --pidfile "$1" --timeout 2s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pf := filepath.Join(lockDir(t), "caller.pid")
			cmd := osexec.Command("sh", "-c", tt.script, "sh", pf, guardBin)
			out, err := cmd.CombinedOutput()
			code := cmd.ProcessState.ExitCode()
			if tt.name == "itself" {
				if code <= 0 || !strings.Contains(string(out), pf) {
					t.Fatalf("stop --pidfile naming guard itself: %v, %q; want non-zero naming %s", err, out, pf)
				}
				return
			}
			if code != 0 {
				t.Fatalf("the caller was hurt: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "guard=78") || !strings.Contains(string(out), "refusing to signal") {
				t.Errorf("stop --pidfile naming the caller: %q; want exit 78, refusing", out)
			}
			if tt.name == "process group" && !strings.Contains(string(out), "alive") {
				t.Errorf("the process-group member was signalled: %q", out)
			}
		})
	}
}
