package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/guardtest"
)

// 50 concurrent runs on one lock: exactly one job runs; the other 49 exit
// 75 while it still runs.
func TestFiftyConcurrentRuns(t *testing.T) {
	dir := lockDir(t)
	lock, starts, ended := filepath.Join(dir, "job.lock"), filepath.Join(dir, "starts"), filepath.Join(dir, "ended")
	job := fmt.Sprintf("echo $$ >> %s; sleep 5; touch %s", starts, ended)
	ps := make([]*proc, 50)
	for i := range ps {
		ps[i] = startGuard(t, "run", "--lock", lock, "--", "sh", "-c", job)
	}
	// Note, the moment each run ends, whether the job had already ended.
	late := make([]chan bool, len(ps))
	for i, p := range ps {
		late[i] = make(chan bool, 1)
		go func(p *proc, c chan bool) {
			<-p.done
			_, err := os.Stat(ended)
			c <- err == nil
		}(p, late[i])
	}
	var winners, losers int
	for i, p := range ps {
		switch code := p.wait(t); code {
		case 0:
			winners++
		case 75:
			losers++
			if <-late[i] {
				t.Errorf("a loser exited only after the job ended: %q", p.stderr.String())
			}
			if !strings.Contains(p.stderr.String(), "busy, held by PID") {
				t.Errorf("loser's message does not name the holder: %q", p.stderr.String())
			}
		default:
			t.Errorf("exit %d: %s", code, p.stderr.String())
		}
	}
	b, _ := os.ReadFile(starts)
	if n := strings.Count(string(b), "\n"); n != 1 || winners != 1 || losers != 49 {
		t.Fatalf("%d jobs started, %d runs exited 0, %d exited 75; want 1, 1, 49", n, winners, losers)
	}
}

// The job witnesses exclusivity itself with a second lock taken by the real
// flock(1): a job that finds it busy has overlapped another.
func witnessJob(t *testing.T, dir string, body string) []string {
	t.Helper()
	guardtest.RequirePeer(t, "flock", "util-linux")
	check, log := filepath.Join(dir, "witness"), filepath.Join(dir, "log")
	return []string{"flock", "-n", "-E", "99", check, "sh", "-c",
		fmt.Sprintf(`echo "$GUARD_TOKEN" >> %s; %s`, log, body)}
}

// SIGKILL guard at random moments, during acquisition, record write and the
// job: the next run gets the lock, tokens keep increasing, jobs never overlap.
func TestSIGKILLAtRandomMoments(t *testing.T) {
	dir := lockDir(t)
	lock := filepath.Join(dir, "job.lock")
	rounds := 60
	if testing.Short() {
		rounds = 15
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	overlaps := 0
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				p := startGuard(t, append([]string{"run", "--wait", "30s", "--lock", lock, "--"},
					witnessJob(t, dir, fmt.Sprintf("sleep 0.0%d", (i+w)%5))...)...)
				// Kill at a spread of moments: 0-20ms covers start-up,
				// acquisition and the record write; later, the job.
				delay := time.Duration((i*7+w*13)%25) * time.Millisecond
				killed := i%3 == 0
				if killed {
					time.Sleep(delay)
					p.cmd.Process.Signal(syscall.SIGKILL)
				}
				code := p.wait(t)
				mu.Lock()
				switch {
				case code == 99:
					overlaps++
				case code != 0 && !(killed && signalOf(p) == syscall.SIGKILL):
					t.Errorf("run exited %d: %s", code, p.stderr.String())
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	if overlaps > 0 {
		t.Fatalf("%d jobs found another job running", overlaps)
	}
	// The lock is usable and the token larger than every one handed out.
	guardtest.Eventually(t, "lock free", func() bool { return !held(t, lock) })
	r := guard(t, "run", "--lock", lock, "--", "sh", "-c", `echo "$GUARD_TOKEN" >> `+filepath.Join(dir, "log"))
	if r.code != 0 {
		t.Fatalf("final run: %d %s", r.code, r.stderr)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "log"))
	toks := strings.Fields(string(b))
	if len(toks) < rounds {
		t.Fatalf("only %d jobs ran in %d rounds", len(toks), 3*rounds)
	}
	for i := 1; i < len(toks); i++ {
		if len(toks[i]) < len(toks[i-1]) || (len(toks[i]) == len(toks[i-1]) && toks[i] <= toks[i-1]) {
			t.Fatalf("token %s after %s: not strictly increasing", toks[i], toks[i-1])
		}
	}
}

// The job never outlives the lock: SIGKILL to guard kills the job, or the job
// keeps the lock until it ends.
func TestJobDiesWithGuardOrKeepsLock(t *testing.T) {
	dir := lockDir(t)
	lock, pidf := filepath.Join(dir, "job.lock"), filepath.Join(dir, "jobpid")
	p := startGuard(t, "run", "--lock", lock, "--", "sh", "-c", "echo $$ > "+pidf+"; sleep 1001 & sleep 1001")
	guardtest.Eventually(t, "job started", func() bool { return fileHas(pidf, "\n") })
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait(t)
	// The background sleep inherited the lock: while it lives the lock is
	// held, so a new run is refused.
	r := guard(t, "run", "--lock", lock, "--", "true")
	if r.code != 75 {
		t.Fatalf("a new run got exit %d while the killed run's job survives: %s", r.code, r.stderr)
	}
	st := guard(t, "status", "--lock", lock)
	if st.code != 0 || !strings.Contains(st.stdout, "not the proven holder") && !strings.Contains(st.stdout, "PID") {
		t.Logf("status: %d %s", st.code, st.stdout)
	}
	// stop stops the leftover: it holds the dead holder's locked
	// descriptor (Promise 6), and the lock is free again.
	if r := guard(t, "stop", "--lock", lock); r.code != 0 {
		t.Fatalf("stop: %d %q %q, want 0", r.code, r.stdout, r.stderr)
	}
	if r := guard(t, "run", "--lock", lock, "--", "true"); r.code != 0 {
		t.Fatalf("run after stop: %d %s", r.code, r.stderr)
	}
}

// The lock file deleted or replaced under a running holder: the holder takes
// the lock again on the new file, so a new run is refused: never two jobs.
func TestLockFileDeletedOrReplaced(t *testing.T) {
	for _, how := range []string{"deleted", "replaced"} {
		t.Run(how, func(t *testing.T) {
			dir := lockDir(t)
			lock, started := filepath.Join(dir, "job.lock"), filepath.Join(dir, "started")
			a := startGuard(t, "run", "--lock", lock, "--", "sh", "-c", "touch "+started+"; exec sleep 1000")
			guardtest.Eventually(t, "job started", func() bool { _, err := os.Stat(started); return err == nil })
			if how == "deleted" {
				os.Remove(lock)
			} else {
				os.WriteFile(lock+".tmp", nil, 0o644)
				os.Rename(lock+".tmp", lock)
			}
			guardtest.Eventually(t, "the holder to notice", func() bool {
				return strings.Contains(a.stderr.String(), "took the lock again")
			})
			if r := guard(t, "run", "--lock", lock, "--", "true"); r.code != 75 {
				t.Fatalf("second run after %s lock file: exit %d, want 75 (%s)", how, r.code, r.stderr)
			}
			if r := guard(t, "status", "--lock", lock); r.code != 0 || !strings.Contains(r.stdout, fmt.Sprint(a.cmd.Process.Pid)) {
				t.Fatalf("status after relock: %d %q", r.code, r.stdout)
			}
		})
	}
}
