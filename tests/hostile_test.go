package tests

import (
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guardkit/guard/instance"
	gproc "github.com/guardkit/guard/internal/proc"

	"github.com/guardkit/guard/internal/guardtest"
)

// TestHostileRecordsAndPidfiles feeds guard forged records and PID files
// and checks that it refuses or says "not running", and that the innocent
// bystander and the foreign holder survive. It runs inside a private PID
// namespace, so a bug that sent kill(-1) could only hurt the namespace.
func TestHostileRecordsAndPidfiles(t *testing.T) {
	if os.Getenv("GUARD_IN_PIDNS") != "1" {
		unshare := guardtest.RequirePeer(t, "unshare", "util-linux")
		guardtest.RequirePeer(t, "flock", "util-linux")
		cmd := osexec.Command(unshare, "--pid", "--fork", "--mount-proc", "--kill-child",
			os.Args[0], "-test.run=^TestHostileRecordsAndPidfiles$", "-test.v")
		cmd.Env = append(os.Environ(), "GUARD_IN_PIDNS=1", "GUARD_TEST_BIN="+guardBin, "GUARD_TEST_HOLDER="+holderBin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "unshare failed") {
				if os.Getenv("GUARD_REQUIRE_PEERS") != "1" {
					t.Skipf("cannot create a PID namespace: %s", out)
				}
			}
			t.Fatalf("in a private PID namespace: %v\n%s", err, out)
		}
		t.Logf("in a private PID namespace:\n%s", out)
		return
	}
	dir := lockDir(t)
	innocent := sleeper(t)
	ipid := innocent.cmd.Process.Pid
	istat, err := gproc.ReadStat(ipid)
	if err != nil {
		t.Fatal(err)
	}
	boot, _ := gproc.BootID()
	ns, _ := gproc.PIDNamespace(0)
	forged := func(pid int, start uint64) string {
		r := instance.Record{PID: pid, StartTicks: start, BootID: boot, PIDNS: ns, Host: "h",
			Acquired: time.Now().Add(-time.Hour), Token: 7}
		return string(r.Marshal())
	}
	records := []struct{ name, content string }{
		{"innocent PID, perfect identity", forged(ipid, istat.StartTicks)},
		{"innocent PID, wrong start time (reused)", forged(ipid, istat.StartTicks+1)},
		{"pid 1", "1\n"},
		{"pid -1", "-1\n"},
		{"pid 0", "0\n"},
		{"wraps to -1", "4294967295\n"},
		{"huge", "99999999999999999999999\n"},
		{"guard test's own PID", fmt.Sprintf("%d\n", os.Getpid())},
		{"junk", "\x00\xff junk\n"},
		{"empty", ""},
		{"sign", "+5\n"},
	}
	checkAlive := func(t *testing.T, who ...*proc) {
		t.Helper()
		for _, p := range who {
			if !alive(p.cmd.Process.Pid) {
				t.Fatalf("PID %d (%v) was hurt", p.cmd.Process.Pid, p.cmd.Args)
			}
		}
	}
	// A foreign program (flock(1)) holds the lock; the record is forged.
	for _, rc := range records {
		t.Run("held by flock(1)/"+rc.name, func(t *testing.T) {
			lock := filepath.Join(dir, "held-"+strings.ReplaceAll(rc.name, " ", "_")+".lock")
			os.WriteFile(lock, []byte(rc.content), 0o644)
			foreign := start(t, "flock", lock, "sleep", "1000")
			guardtest.Eventually(t, "flock(1) holds the lock", func() bool { return guard(t, "status", "--lock", lock).code != 3 })
			if r := guard(t, "stop", "--lock", lock, "--timeout", "200ms"); r.code == 0 {
				t.Errorf("stop succeeded against a forged record: %s", r.stdout)
			}
			if r := guard(t, "reload", "--lock", lock); r.code == 0 {
				t.Errorf("reload succeeded against a forged record: %s", r.stdout)
			}
			if r := guard(t, "run", "--lock", lock, "--", "true"); r.code != 75 {
				t.Errorf("run on a lock held by flock(1): exit %d, want 75", r.code)
			}
			checkAlive(t, innocent, foreign)
		})
	}
	// Nobody holds the lock; a forged record claims a holder that crashed.
	for _, rc := range records {
		t.Run("not held/"+rc.name, func(t *testing.T) {
			lock := filepath.Join(dir, "free-"+strings.ReplaceAll(rc.name, " ", "_")+".lock")
			os.WriteFile(lock, []byte(rc.content), 0o644)
			r := guard(t, "status", "--lock", lock)
			if r.code != 1 && r.code != 3 {
				t.Errorf("status: %d %s, want 1 (stale) or 3", r.code, r.stdout)
			}
			if r := guard(t, "stop", "--lock", lock); r.code != 0 || !strings.Contains(r.stdout, "not running") {
				t.Errorf("stop: %d %q, want 0 not running", r.code, r.stdout)
			}
			checkAlive(t, innocent)
		})
	}
	// Hostile PID files for daemons guard did not start.
	pidfiles := []struct {
		name, content string
		old           bool // written before the innocent started: PID reused
	}{
		{"pid 1", "1\n", false}, {"pid -1", "-1\n", false}, {"pid 0", "0\n", false},
		{"wraps to -1", "4294967295\n", false}, {"own PID", fmt.Sprintf("%d\n", os.Getpid()), false},
		{"innocent, reused", fmt.Sprintf("%d\n", ipid), true}, {"spaces", fmt.Sprintf(" %d \n", ipid), false},
		{"hex", "0x10\n", false}, {"empty", "", false},
	}
	for _, pc := range pidfiles {
		t.Run("pidfile/"+pc.name, func(t *testing.T) {
			pf := filepath.Join(dir, strings.ReplaceAll(pc.name, " ", "_")+".pid")
			os.WriteFile(pf, []byte(pc.content), 0o644)
			if pc.old {
				old := time.Now().Add(-24 * time.Hour)
				os.Chtimes(pf, old, old)
			}
			if r := guard(t, "stop", "--pidfile", pf, "--timeout", "200ms"); strings.Contains(r.stdout, "stopped") || strings.Contains(r.stdout, "killed") {
				t.Errorf("stop signalled: %d %q", r.code, r.stdout)
			}
			checkAlive(t, innocent)
		})
	}
	// A PID file of a live, unrelated process does name it; --exec ties it
	// to a program, and a mismatch is refused.
	pf := filepath.Join(dir, "sleep.pid")
	os.WriteFile(pf, []byte(fmt.Sprintf("%d\n", ipid)), 0o644)
	if r := guard(t, "stop", "--pidfile", pf, "--exec", guardBin, "--timeout", "200ms"); r.code != 0 || strings.Contains(r.stdout, "stopped") {
		t.Errorf("stop --exec with the wrong program: %d %q", r.code, r.stdout)
	}
	checkAlive(t, innocent)
}

// A holder in another PID namespace (a container) cannot be verified from
// here: status says unknown (4), stop and reload refuse and signal nothing.
func TestHolderInAnotherPIDNamespace(t *testing.T) {
	unshare := guardtest.RequirePeer(t, "unshare", "util-linux")
	dir := lockDir(t)
	lock, ready := filepath.Join(dir, "ns.lock"), filepath.Join(dir, "ready")
	p := start(t, unshare, "--pid", "--fork", "--mount-proc", "--kill-child",
		guardBin, "run", "--lock", lock, "--", "sh", "-c", "touch "+ready+"; exec sleep 1000")
	guardtest.Eventually(t, "the namespaced job", func() bool { return exists(ready) })
	init := nsInit(t, p.cmd.Process.Pid)
	r := guard(t, "status", "--lock", lock)
	if r.code != 4 || !strings.Contains(r.stdout, "another PID namespace") {
		t.Fatalf("status: %d %q, want 4 (another PID namespace)", r.code, r.stdout)
	}
	if r := guard(t, "stop", "--lock", lock, "--timeout", "200ms"); r.code != 4 {
		t.Fatalf("stop: %d %q %q, want 4 and nothing signalled", r.code, r.stdout, r.stderr)
	}
	if r := guard(t, "reload", "--lock", lock); r.code == 0 {
		t.Fatalf("reload succeeded across PID namespaces: %s", r.stdout)
	}
	if !alive(init) {
		t.Fatal("the namespaced guard was signalled")
	}
}
