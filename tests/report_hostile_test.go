package tests

// Hostile input: reporting (--ping, --quiet-success) must not change a run
// (CONTRACT, Promise 10).

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// A job whose reader goes away gets SIGPIPE with --ping as it does without:
// `guard run --ping URL -- producer | head -1` ends, it does not run (and
// hold the lock) forever because guard swallowed the broken pipe.
func TestPingKeepsSIGPIPE(t *testing.T) {
	rec := newRecorder(t, false)
	for _, ping := range []bool{false, true} {
		lock := filepath.Join(lockDir(t), "p.lock")
		line := guardBin + " run --lock " + lock
		if ping {
			line += " --ping " + rec.url + "/check"
		}
		line += " -- yes | head -1"
		cmd := exec.Command("sh", "-c", line)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			t.Fatalf("ping=%v: `guard run ... -- yes | head -1` still running after 20s: the job never got SIGPIPE\n%s", ping, out.String())
		}
	}
}

var headerRE = regexp.MustCompile(`guard: \S+: failure, exit code 3, after ([0-9.]+m?s)`)
var durationRE = regexp.MustCompile(`guard_job_duration_seconds\{[^}]*\} ([0-9.e+-]+)`)

// --quiet-success's header says how long the run took, as the textfile
// does, not that plus the time guard waited for a leftover's output.
func TestQuietSuccessHeaderDuration(t *testing.T) {
	lock := filepath.Join(lockDir(t), "q.lock")
	tf := t.TempDir()
	r := guard(t, "run", "--lock", lock, "--name", "q", "--textfile-dir", tf, "--quiet-success", "--leftovers", "ignore", "--",
		"sh", "-c", `echo hi; setsid sleep 30 & exit 3`)
	if r.code != 3 {
		t.Fatalf("exit %d, want 3: %s %s", r.code, r.stdout, r.stderr)
	}
	m := headerRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no header in %q", r.stdout)
	}
	header, err := time.ParseDuration(m[1])
	if err != nil {
		t.Fatal(err)
	}
	prom, _ := os.ReadFile(filepath.Join(tf, "q.prom"))
	d := durationRE.FindSubmatch(prom)
	if d == nil {
		t.Fatalf("no duration in the textfile:\n%s", prom)
	}
	secs, err := strconv.ParseFloat(string(d[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	run := time.Duration(secs * float64(time.Second))
	if diff := header - run; diff > time.Second || diff < -time.Second {
		t.Fatalf("header says %v, the run took %v (textfile): the header counts the wait for a leftover's output", header, run)
	}
}
