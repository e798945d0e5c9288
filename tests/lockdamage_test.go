package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guardkit/guard/instance"

	"github.com/guardkit/guard/internal/guardtest"
)

// These tests damage the lock the way a clumsy admin or a hostile job does
// (delete the lock file, write or unlock the inherited descriptor, hold a
// shared lock as another user, forge the record, starve guard of
// descriptors) and check that two runs still never overlap.

// statusOf is the part of guard status --json these tests read.
type statusOf struct {
	Held  bool   `json:"held"`
	PID   int    `json:"pid"`
	Token uint64 `json:"token"`
}

func status(t *testing.T, lock string) statusOf {
	t.Helper()
	r := guard(t, "status", "--json", "--lock", lock)
	var s statusOf
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("status --json (exit %d): %v: %q %s", r.code, err, r.stdout, r.stderr)
	}
	return s
}

// record parses the record in the lock file itself.
func record(t *testing.T, lock string) *instance.Record {
	t.Helper()
	b, err := os.ReadFile(lock)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := instance.ParseRecord(b)
	if err != nil {
		t.Fatalf("the record in %s does not parse (%v): %q", lock, err, b)
	}
	return rec
}

func readToken(t *testing.T, path string) uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return tok
}

// The lock file deleted under a running holder, and a new run started
// within the first milliseconds, before the holder can notice (it checks
// once a second): the run creates a new file, finds the holder still
// locking the deleted one, and is busy (75). On the old code it took the new
// file's lock and its job found the witness held.
func TestLockDamageDeletedLockFileNextRun(t *testing.T) {
	deletedLockFile(t, 1, 0)
}

// As above, with several runs racing after the rm, and one more once they
// ended. The run that creates the new lock file finds the holder of the
// deleted one and is busy, leaving the new file empty; a later run that
// opens it finds it empty (no holder ever wrote a record there) and looks
// again, so it is busy too:
//
//	guard run --lock L -- flock -n -E 99 W sleep 30 &   # until it runs
//	rm L
//	guard run --lock L -- flock -n -E 99 W true   # 75
//	guard run --lock L -- flock -n -E 99 W true   # 75, not 99 (overlap)
func TestLockDamageDeletedLockFileRace(t *testing.T) {
	deletedLockFile(t, 3, 1)
}

// deletedLockFile runs rounds of: a holder runs a witness job; rm the lock
// file; start racers runs at once, then after more, one by one once those
// ended. Every run must be busy, or run without overlapping (exit 99).
func deletedLockFile(t *testing.T, racers, after int) {
	guardtest.RequirePeer(t, "flock", "util-linux")
	dir := lockDir(t)
	lock, wit := filepath.Join(dir, "job.lock"), filepath.Join(dir, "witness")
	n := iterations(100, 15)
	busy := 0
	for i := 0; i < n; i++ {
		ready := filepath.Join(dir, fmt.Sprintf("ready.%d", i))
		holder := startTree(t, "run", "--lock", lock, "--", "flock", "-n", "-E", "99", wit,
			"sh", "-c", "touch "+ready+"; exec sleep 30")
		guardtest.Eventually(t, "the holder's job to start", func() bool { return exists(ready) || holder.exited() })
		if holder.exited() {
			t.Fatalf("iteration %d: holder exit %d: %s", i, holder.cmd.ProcessState.ExitCode(), holder.stderr)
		}
		if err := os.Remove(lock); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i%4) * time.Millisecond)
		check := func(p *proc, what string) {
			t.Helper()
			switch code := p.wait(t); code {
			case 75:
				busy++
			case 0:
			case 99:
				t.Fatalf("iteration %d: %s overlapped the holder (started %dms after rm of the lock file)", i, what, i%4)
			default:
				t.Fatalf("iteration %d: %s exit %d: %s", i, what, code, p.stderr)
			}
		}
		runNext := func() *proc {
			return startGuard(t, "run", "--lock", lock, "--", "flock", "-n", "-E", "99", wit, "true")
		}
		ps := make([]*proc, racers)
		for k := range ps {
			ps[k] = runNext()
		}
		for _, p := range ps {
			check(p, "a run")
		}
		for k := 0; k < after; k++ {
			check(runNext(), "a run after the racers ended")
		}
		holder.cmd.Process.Signal(syscall.SIGTERM)
		// 143: stopped; 69: it lost the lock and could not take it back
		// (a run held the new file at that moment), so it stopped the job.
		if code := holder.wait(t); code != 143 && code != 69 {
			t.Fatalf("iteration %d: holder exit %d: %s", i, code, holder.stderr)
		}
	}
	t.Logf("%d of %d runs were busy", busy, n*(racers+after))
}

// A job that writes to its inherited lock descriptor gets EBADF (it is
// read-only): the record stays intact, status names the real holder and
// stop still stops it. On the old code the descriptor was read-write and
// the job's bytes tore the record.
func TestLockDamageJobWritesFD3(t *testing.T) {
	dir := lockDir(t)
	lock, res, tok, ready := filepath.Join(dir, "job.lock"), filepath.Join(dir, "res"),
		filepath.Join(dir, "tok"), filepath.Join(dir, "ready")
	job := fmt.Sprintf(`if [ ! -e /proc/$$/fd/3 ]; then echo no-fd3; elif echo 666 >&3 2>/dev/null; then echo wrote; else echo refused; fi > %s
		echo "$GUARD_TOKEN" > %s; touch %s; exec sleep 30`, res, tok, ready)
	p := startTree(t, "run", "--lock", lock, "--", "sh", "-c", job)
	guardtest.Eventually(t, "job started", func() bool { return exists(ready) })
	if b, _ := os.ReadFile(res); string(b) != "refused\n" {
		t.Errorf("the job's write to fd 3: %q, want refused", b)
	}
	pid, token := p.cmd.Process.Pid, readToken(t, tok)
	if rec := record(t, lock); rec.PID != pid || rec.Token != token {
		t.Errorf("record: PID %d token %d, want %d %d", rec.PID, rec.Token, pid, token)
	}
	if s := status(t, lock); !s.Held || s.PID != pid || s.Token != token {
		t.Errorf("status: %+v, want held by %d with token %d", s, pid, token)
	}
	if r := guard(t, "stop", "--lock", lock); r.code != 0 {
		t.Fatalf("stop exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	if !p.exited() {
		t.Fatal("stop returned 0 but the holder still runs")
	}
	if r := guard(t, "run", "--lock", lock, "--", "true"); r.code != 0 {
		t.Fatalf("run after stop: %d %s", r.code, r.stderr)
	}
}

// A job that unlocks its inherited descriptor (flock -u 3): guard notices
// within a second, says so, and takes the lock again, so a new run is busy
// and the record names guard with a larger token. The old code never
// noticed: the lock stayed free while the job ran.
func TestLockDamageJobUnlocksFD3(t *testing.T) {
	guardtest.RequirePeer(t, "flock", "util-linux")
	dir := lockDir(t)
	lock, tok, unlocked := filepath.Join(dir, "job.lock"), filepath.Join(dir, "tok"), filepath.Join(dir, "unlocked")
	job := fmt.Sprintf(`echo "$GUARD_TOKEN" > %s; flock -u 3 && touch %s; exec sleep 30`, tok, unlocked)
	p := startTree(t, "run", "--lock", lock, "--", "sh", "-c", job)
	guardtest.Eventually(t, "the job to unlock fd 3", func() bool { return exists(unlocked) })
	guardtest.Eventually(t, "guard to notice and take the lock again", func() bool {
		return strings.Contains(p.stderr.String(), "took the lock again")
	})
	if !strings.Contains(p.stderr.String(), "flock -u") {
		t.Errorf("guard's message does not say what happened: %q", p.stderr)
	}
	if r := guard(t, "run", "--lock", lock, "--", "true"); r.code != 75 {
		t.Fatalf("a new run got exit %d while the job runs: %s", r.code, r.stderr)
	}
	old := readToken(t, tok)
	if s := status(t, lock); !s.Held || s.PID != p.cmd.Process.Pid || s.Token <= old {
		t.Fatalf("status %+v; want held by %d with a token above %d", s, p.cmd.Process.Pid, old)
	}
	if r := guard(t, "stop", "--lock", lock); r.code != 0 {
		t.Fatalf("stop exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
}

// flock -u 3 in the job, and a new run that takes the lock before guard
// notices (the job gave the lock away itself: the two jobs overlap for up to
// a second, which only the job can cause): the old run stops its job (69)
// and leaves the new holder's record alone. The old code let its job run on
// and then overwrote the new holder's record with its own "released" one.
func TestLockDamageUnlockRaceKeepsNewRecord(t *testing.T) {
	guardtest.RequirePeer(t, "flock", "util-linux")
	for attempt := 0; ; attempt++ {
		if attempt == 5 {
			t.Skip("the old holder took the lock back before the new run every time; the race was not hit")
		}
		dir := lockDir(t)
		lock, unlocked, btok, bready := filepath.Join(dir, "job.lock"), filepath.Join(dir, "unlocked"),
			filepath.Join(dir, "btok"), filepath.Join(dir, "bready")
		a := startTree(t, "run", "--lock", lock, "--", "sh", "-c",
			fmt.Sprintf(`flock -u 3 && touch %s; sleep 8`, unlocked))
		guardtest.Eventually(t, "the job to unlock fd 3", func() bool { return exists(unlocked) })
		b := startTree(t, "run", "--lock", lock, "--", "sh", "-c",
			fmt.Sprintf(`echo "$GUARD_TOKEN" > %s; touch %s; exec sleep 30`, btok, bready))
		guardtest.Eventually(t, "the new run to start or be refused", func() bool { return exists(bready) || b.exited() })
		if b.exited() {
			t.Logf("attempt %d: the old holder took the lock back first (new run exit %d)", attempt, b.cmd.ProcessState.ExitCode())
			a.cmd.Process.Signal(syscall.SIGTERM)
			a.wait(t)
			continue
		}
		var code int
		guardtest.Eventually(t, "the old run to notice and stop its job", func() bool {
			if a.exited() {
				code = a.cmd.ProcessState.ExitCode()
				return true
			}
			return false
		})
		if code != 69 {
			t.Errorf("old run exit %d, want 69 (lost the lock, job stopped): %s", code, a.stderr)
		}
		tok := readToken(t, btok)
		if rec := record(t, lock); rec.PID != b.cmd.Process.Pid || rec.Token != tok {
			t.Fatalf("the record after the old run ended: PID %d token %d released %v; want the new holder %d, token %d",
				rec.PID, rec.Token, rec.Released, b.cmd.Process.Pid, tok)
		}
		if s := status(t, lock); !s.Held || s.PID != b.cmd.Process.Pid {
			t.Fatalf("status %+v, want held by the new run %d", s, b.cmd.Process.Pid)
		}
		return
	}
}

// The lock file guard creates is 0600: another user cannot open it, so
// cannot hold a shared lock that would block root's runs forever.
// --lock-mode 0644 widens it (and lets nobody block the lock, which is what
// the opt-in means); a mode writable by others is refused (64).
func TestLockDamageLockModeDoS(t *testing.T) {
	needRootAndRunuser(t)
	guardtest.RequirePeer(t, "flock", "util-linux")
	dir := openTempDir(t)
	lock := filepath.Join(dir, "job.lock")
	if r := guard(t, "run", "--lock", lock, "--", "true"); r.code != 0 {
		t.Fatalf("run exit %d: %s", r.code, r.stderr)
	}
	if st, err := os.Stat(lock); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("new lock file: %v %v, want mode 0600", st.Mode(), err)
	}
	nobody := start(t, "runuser", "-u", "nobody", "--", "flock", "-s", lock, "sleep", "5")
	guardtest.Eventually(t, "nobody's flock -s to fail", nobody.exited)
	if code := nobody.wait(t); code == 0 || !strings.Contains(nobody.stderr.String(), "Permission denied") {
		t.Fatalf("nobody's flock -s: exit %d, want a refused open: %s", code, nobody.stderr)
	}
	if r := guard(t, "run", "--lock", lock, "--", "true"); r.code != 0 {
		t.Fatalf("root's run after nobody's attempt: exit %d: %s", r.code, r.stderr)
	}

	wide := filepath.Join(dir, "wide.lock")
	if r := guard(t, "run", "--lock-mode", "0644", "--lock", wide, "--", "true"); r.code != 0 {
		t.Fatalf("run --lock-mode 0644 exit %d: %s", r.code, r.stderr)
	}
	if st, err := os.Stat(wide); err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("--lock-mode 0644: %v %v", st.Mode(), err)
	}
	nb := start(t, "runuser", "-u", "nobody", "--", "flock", "-s", wide, "sleep", "5")
	guardtest.Eventually(t, "nobody's shared lock on the 0644 file to block root's run", func() bool {
		if nb.exited() {
			t.Fatalf("nobody could not lock the 0644 file: %s", nb.stderr)
		}
		// With --lock-mode again: a run without it narrows the file to
		// 0600 (see below), and nobody's open could come too late.
		return guard(t, "run", "--lock-mode", "0644", "--lock", wide, "--", "true").code == 75
	})
	syscall.Kill(-nb.cmd.Process.Pid, syscall.SIGKILL)
	nb.wait(t)

	// A lock file left 0644 (by the old guard, which created it so) is
	// narrowed to 0600 by the next run that holds it: the upgrade closes
	// the hole. (The contract speaks of the mode "when guard creates it";
	// the code also sets it on an existing file the user owns.)
	if r := guard(t, "run", "--lock", wide, "--", "true"); r.code != 0 {
		t.Fatalf("run on the 0644 file: exit %d: %s", r.code, r.stderr)
	}
	if st, err := os.Stat(wide); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("an existing 0644 lock file after a default run: %v %v, want 0600", st.Mode(), err)
	}

	bad := filepath.Join(dir, "bad.lock")
	for _, mode := range []string{"0666", "0622", "rw"} {
		if r := guard(t, "run", "--lock-mode", mode, "--lock", bad, "--", "true"); r.code != 64 {
			t.Errorf("--lock-mode %s: exit %d, want 64: %s", mode, r.code, r.stderr)
		}
	}
	if exists(bad) {
		t.Error("a refused --lock-mode still created the lock file")
	}
}

// --listen bad is a usage error at parse time (64), with and without
// GUARD_PARSE_ONLY=1: the job never runs and the lock is never taken. The
// old code took the lock, then failed to listen (70), and said nothing
// under GUARD_PARSE_ONLY=1 (0).
func TestLockDamageListenBadIsUsage(t *testing.T) {
	dir := lockDir(t)
	lock, ran := filepath.Join(dir, "job.lock"), filepath.Join(dir, "ran")
	for _, env := range [][]string{nil, {"GUARD_PARSE_ONLY=1"}} {
		for _, addr := range []string{"bad", "127.0.0.1:http", "127.0.0.1:70000"} {
			r := runEnv(t, env, guardBin, "run", "--listen", addr, "--lock", lock, "--", "touch", ran)
			if r.code != 64 || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("%v --listen %s: exit %d, want 64 and one line: %q", env, addr, r.code, r.stderr)
			}
		}
	}
	if exists(ran) || exists(lock) {
		t.Fatal("a run with a bad --listen started the job or created the lock")
	}
}

// An open-file limit too small for guard: one line, exit 70, no goroutine
// dump, and the job never starts. The old code took the lock and then
// failed to start the job (126).
func TestLockDamageTooFewFDs(t *testing.T) {
	dir := lockDir(t)
	lock, ran := filepath.Join(dir, "job.lock"), filepath.Join(dir, "ran")
	for _, n := range []int{8, 12, 15} {
		r := run(t, "sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" run --lock %s -- touch %s`, n, lock, ran), guardBin)
		if r.code != 70 || strings.Count(r.stderr, "\n") != 1 || strings.Contains(r.stderr, "goroutine") {
			t.Errorf("ulimit -n %d: exit %d, want 70 and one line: %q", n, r.code, r.stderr)
		}
	}
	if exists(ran) {
		t.Fatal("the job ran")
	}
	if r := run(t, "sh", "-c", fmt.Sprintf(`ulimit -n 16 && exec "$0" run --lock %s -- touch %s`, lock, ran), guardBin); r.code != 0 {
		t.Fatalf("ulimit -n 16: exit %d: %s", r.code, r.stderr)
	}
}

// A record whose fencing token is at its limit (2^63-1), forged or left by
// an old bug: the next run is refused (78) and the token never goes back.
// One below the limit, the run gets the limit itself and the next one is
// refused. The old code handed out 2^63 and then started again from the
// clock.
func TestLockDamageTokenAtLimit(t *testing.T) {
	const maxToken = 1<<63 - 1
	dir := lockDir(t)
	write := func(lock string, token uint64) []byte {
		t.Helper()
		now := time.Now().Add(-time.Hour)
		rec := instance.Record{LastPID: 4242, BootID: "b", Host: "h", Acquired: now, Released: now,
			Name: "job", Command: `"true"`, Token: token}
		b := rec.Marshal()
		if err := os.WriteFile(lock, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return b
	}
	lock, ran := filepath.Join(dir, "max.lock"), filepath.Join(dir, "ran")
	before := write(lock, maxToken)
	r := guard(t, "run", "--lock", lock, "--", "touch", ran)
	if r.code != 78 || !strings.Contains(r.stderr, strconv.FormatUint(maxToken, 10)) {
		t.Errorf("token at the limit: exit %d, want 78 naming the token: %q", r.code, r.stderr)
	}
	if exists(ran) {
		t.Error("the job ran on a record whose token cannot increase")
	}
	if after, _ := os.ReadFile(lock); !bytes.Equal(after, before) {
		t.Errorf("the refused run changed the record:\n%s", after)
	}

	lock2, tok := filepath.Join(dir, "near.lock"), filepath.Join(dir, "tok")
	write(lock2, maxToken-1)
	if r := guard(t, "run", "--lock", lock2, "--", "sh", "-c", `echo "$GUARD_TOKEN" > `+tok); r.code != 0 {
		t.Fatalf("token one below the limit: exit %d: %s", r.code, r.stderr)
	}
	if got := readToken(t, tok); got != maxToken {
		t.Fatalf("token after %d: %d, want %d", uint64(maxToken-1), got, uint64(maxToken))
	}
	if r := guard(t, "run", "--lock", lock2, "--", "touch", ran); r.code != 78 || exists(ran) {
		t.Fatalf("after the limit was handed out: exit %d, want 78: %s", r.code, r.stderr)
	}
	if rec := record(t, lock2); rec.Token != maxToken {
		t.Fatalf("the token went from the limit to %d", rec.Token)
	}
}
