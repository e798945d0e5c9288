package main

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/guardkit/guard/etcd/internal/etcdtest"
	"github.com/guardkit/guard/internal/guardtest"
)

// The partition of TestPartitionKillsTreeBeforeStandby, side by side with
// the real etcdctl lock (3.7): etcdctl never watches its lease while the
// command runs, so once etcd expires the cut-off holder's lease, a standby
// gets the lock while the first job still runs, and the witness shows the
// overlap. guard's standby, in the same situation, always finds the old
// tree dead. (README's etcd table comes from this test.)
func TestEtcdctlLockOverlapsWhereGuardDoesNot(t *testing.T) {
	guardtest.RequirePeer(t, "flock", "util-linux")
	// overlap runs a holder through a proxy and a standby directly, cuts the
	// proxy off, and reports whether the standby's job found the holder's
	// job (or what it left) still running.
	overlap := func(what, prog string, holder, standby func(ep string) []string) bool {
		dir := t.TempDir()
		witness, ready := filepath.Join(dir, "witness"), filepath.Join(dir, "ready")
		px := etcdtest.NewProxy(t, endpoint)
		defer px.Close()
		job := []string{"flock", "-n", witness, "sh", "-c",
			fmt.Sprintf(`trap "" TERM; (trap "" TERM; sleep 300) & touch %s; wait`, ready)}
		h := startProg(t, prog, append(holder(px.Addr()), job...)...)
		guardtest.Eventually(t, what+": the holder's job", func() bool { return exists(ready) })
		s := startProg(t, prog, append(standby(endpoint), "flock", "-n", "-E", "99", witness, "true")...)
		px.Blackhole()
		code := s.wait(t)
		t.Logf("%s: the standby's job exit %d (99: it overlapped the cut-off holder's job); holder said %q", what, code, h.stderr.String())
		return code == 99
	}
	name := fmt.Sprintf("etcdctl-%d", time.Now().UnixNano())
	ctl := func(ep string) []string { return []string{"--endpoints=" + ep, "lock", "--ttl=4", name, "--"} }
	if !overlap("etcdctl lock", etcdctl, ctl, ctl) {
		t.Error("etcdctl lock did not overlap: the comparison in README no longer holds")
	}
	gname := name + "-guard"
	if overlap("guard-etcd", bin, func(ep string) []string {
		return []string{"run", "--etcd", ep, "--ttl", "4s", "--lease-grace", "1s", "--name", gname, "--"}
	}, func(ep string) []string {
		return []string{"run", "--etcd", ep, "--wait", "60s", "--name", gname, "--"}
	}) {
		t.Error("guard-etcd overlapped")
	}
}
