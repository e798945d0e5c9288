package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/guardtest"
)

// The real etcd server binary (3.7.3, built from its module) and a real
// link down: the holder runs in a network namespace of its own, reaching
// etcd over a veth pair; the host's end of the link is taken down, so its
// packets go nowhere (no RST, no FIN). Its job's whole tree is dead before
// the standby's job starts, and the cut-off guard exits 69.
func TestRealLinkDownRealServer(t *testing.T) {
	ipBin := guardtest.RequirePeer(t, "ip", "iproute2")
	guardtest.RequirePeer(t, "flock", "util-linux")
	if os.Geteuid() != 0 {
		guardtest.Missing(t, "network namespaces need root")
	}
	dir := t.TempDir()
	server := filepath.Join(dir, "etcd")
	if out, err := exec.Command("go", "build", "-o", server, "go.etcd.io/etcd/server/v3").CombinedOutput(); err != nil {
		t.Fatalf("build the etcd server: %v\n%s", err, out)
	}
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ipBin, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	id := os.Getpid() % 100000
	ns, host, peer := fmt.Sprintf("gt%d", id), fmt.Sprintf("gh%d", id), fmt.Sprintf("gn%d", id)
	sub := fmt.Sprintf("10.213.%d", id%250)
	ip("netns", "add", ns)
	t.Cleanup(func() { exec.Command(ipBin, "netns", "del", ns).Run() })
	ip("link", "add", host, "type", "veth", "peer", "name", peer)
	t.Cleanup(func() { exec.Command(ipBin, "link", "del", host).Run() })
	ip("link", "set", peer, "netns", ns)
	ip("addr", "add", sub+".1/30", "dev", host)
	ip("link", "set", host, "up")
	ip("netns", "exec", ns, ipBin, "addr", "add", sub+".2/30", "dev", peer)
	ip("netns", "exec", ns, ipBin, "link", "set", peer, "up")

	port, peerPort := freePort(t), freePort(t)
	local := fmt.Sprintf("127.0.0.1:%d", port)
	startProg(t, server, "--name", "n", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", fmt.Sprintf("http://%s.1:%d,http://%s", sub, port, local),
		"--advertise-client-urls", "http://"+local,
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peerPort),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peerPort),
		"--initial-cluster", fmt.Sprintf("n=http://127.0.0.1:%d", peerPort))
	guardtest.Eventually(t, "the etcd server", func() bool {
		c, err := net.Dial("tcp", local)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	name := fmt.Sprintf("linkdown-%d", time.Now().UnixNano())
	witness, ready := filepath.Join(dir, "witness"), filepath.Join(dir, "ready")
	job := fmt.Sprintf(`flock -n %s sh -c 'trap "" TERM; (trap "" TERM; sleep 300) & touch %s; wait'`, witness, ready)
	h := startProg(t, ipBin, "netns", "exec", ns, bin, "run", "--etcd", fmt.Sprintf("%s.1:%d", sub, port),
		"--ttl", "4s", "--lease-grace", "1s", "--name", name, "--", "sh", "-c", job)
	guardtest.Eventually(t, "the holder's job", func() bool { return exists(ready) })
	s := startProg(t, bin, "run", "--etcd", local, "--wait", "60s", "--name", name, "--", "flock", "-n", "-E", "99", witness, "true")
	ip("link", "set", host, "down")
	if code := s.wait(t); code != 0 {
		t.Fatalf("standby exit %d (99: its job found the cut-off holder's tree alive); %s", code, s.stderr.String())
	}
	if code := h.wait(t); code != 69 {
		t.Fatalf("cut-off holder exit %d, want 69; %s", code, h.stderr.String())
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
