package tests

// A real systemd (PID 1 of its own PID, mount, UTS, IPC, network and cgroup
// namespaces, on a root file system of its own) runs units around the real
// guard binary and is driven with systemctl.
//
// Safety: systemd as PID 1 runs systemd-tmpfiles and the like, which would
// wipe the host's /tmp if it saw it. sdRootScript therefore builds a root of
// its own before systemd starts: an overlay of / whose upper layer is a
// tmpfs mounted in the private mount namespace (writes and deletions land
// there and vanish with it), fresh tmpfs on /tmp, /var/tmp, /run, /work,
// /root and /home, a new /proc (with /proc/sys read-only), sysfs read-only,
// a cgroup2 mount scoped by the cgroup namespace, and a /dev of a few bound
// nodes; then pivot_root and a lazy unmount of the old root, so that no host
// path is reachable. It checks every one of those mounts, and execs systemd
// only if all hold. Mount propagation is private: nothing leaks back.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/guardtest"
)

const sdRootScript = `#!/bin/sh
set -eu
B=$1; GUARD=$2; UNITS=$3
mount --make-rprivate /
mount -t tmpfs -o mode=0700,size=256m guard-sdroot "$B"
[ "$(findmnt -n -o FSTYPE --mountpoint "$B")" = tmpfs ] || { echo "upper layer not on tmpfs"; exit 99; }
mkdir "$B/upper" "$B/work" "$B/merged"
mount -t overlay overlay -o "lowerdir=/,upperdir=$B/upper,workdir=$B/work" "$B/merged"
M=$B/merged
mount -t proc proc "$M/proc"
for p in sys sysrq-trigger; do
	[ -e "$M/proc/$p" ] || continue
	mount --bind "$M/proc/$p" "$M/proc/$p"
	mount -o remount,bind,ro "$M/proc/$p"
done
mount -t sysfs -o ro sysfs "$M/sys"
mount -t cgroup2 cgroup2 "$M/sys/fs/cgroup"
mount -t tmpfs -o mode=755 guard-dev "$M/dev"
for n in null zero full random urandom tty; do touch "$M/dev/$n"; mount --bind "/dev/$n" "$M/dev/$n"; done
mkdir "$M/dev/pts" "$M/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$M/dev/pts"
ln -s pts/ptmx "$M/dev/ptmx"
touch "$M/dev/console"
mount --bind /dev/null "$M/dev/console"
for d in run tmp var/tmp work root home; do
	mkdir -p "$M/$d"
	mount -t tmpfs "guard-sd-$(echo "$d" | tr / -)" "$M/$d"
done
install -m 0755 "$GUARD" "$M/usr/local/bin/guard"
cp "$UNITS"/* "$M/usr/local/bin/" 2>/dev/null || true
ip link set lo up 2>/dev/null || true
cd "$M"
mkdir oldroot
pivot_root . oldroot
umount -l /oldroot
rmdir /oldroot
# Every host path out of reach, or systemd does not start.
[ "$(findmnt -n -o FSTYPE --mountpoint /)" = overlay ] || { echo "/ is not the overlay"; exit 99; }
for d in /tmp /var/tmp /run /work /root /home /dev; do
	[ "$(findmnt -n -o FSTYPE --mountpoint "$d")" = tmpfs ] || { echo "$d is not a private tmpfs"; exit 99; }
done
[ "$(findmnt -n -o OPTIONS --mountpoint /proc/sys | cut -d, -f1)" = ro ] || { echo "/proc/sys is writable"; exit 99; }
[ ! -e /oldroot ] || { echo "the old root is reachable"; exit 99; }
mkdir -p /etc/systemd/system
printf '[Unit]\nDescription=guard tests\nWants=systemd-journald.socket systemd-journald.service\n' > /etc/systemd/system/guard-test.target
exec env -i container=guard-test PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /lib/systemd/systemd --unit=guard-test.target
`

// realSystemd is a systemd booted by bootSystemd.
type realSystemd struct {
	t   *testing.T
	pid int // systemd's PID in the test's namespace
}

// cgroup2Dir returns a fresh cgroup v2 directory below the test's own
// cgroup, for the cgroup namespace of systemd.
func cgroup2Dir(t *testing.T) string {
	t.Helper()
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	root := ""
	for _, l := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(l); len(f) > 9 && strings.Contains(l, " - cgroup2 ") {
			root = f[4]
			break
		}
	}
	self, _ := os.ReadFile("/proc/self/cgroup")
	var path string
	for _, l := range strings.Split(string(self), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			path = p
		}
	}
	if root == "" {
		guardtest.Missing(t, "no cgroup v2 hierarchy mounted (systemd needs one)")
	}
	dir := filepath.Join(root, path, fmt.Sprintf("guard-systemd-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		guardtest.Missing(t, fmt.Sprintf("cannot create a cgroup for systemd: %v", err))
	}
	t.Cleanup(func() { removeCgroup(dir) })
	return dir
}

// removeCgroup removes a cgroup directory and those below it, deepest first,
// trying again while the killed processes are still leaving them.
func removeCgroup(dir string) {
	deadline := time.Now().Add(guardtest.Patience)
	for removeCgroupOnce(dir) != nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
}

func removeCgroupOnce(dir string) error {
	var dirs []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var err error
	for i := len(dirs) - 1; i >= 0; i-- {
		err = syscall.Rmdir(dirs[i])
	}
	if _, serr := os.Stat(dir); serr == nil && err == nil {
		err = syscall.EBUSY
	}
	return err
}

// bootSystemd starts systemd on a root of its own with programs (name ->
// shell script) in /usr/local/bin, and waits until it runs.
func bootSystemd(t *testing.T, programs map[string]string) *realSystemd {
	t.Helper()
	if testing.Short() {
		t.Skip("boots a real systemd; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: systemd is started as PID 1 of new namespaces")
	}
	for _, p := range [][2]string{{"unshare", "util-linux"}, {"nsenter", "util-linux"}, {"findmnt", "util-linux"}, {"systemctl", "systemd"}, {"ip", "iproute2"}} {
		guardtest.RequirePeer(t, p[0], p[1])
	}
	if _, err := os.Stat("/lib/systemd/systemd"); err != nil {
		guardtest.Missing(t, "/lib/systemd/systemd not found (install the Debian package systemd)")
	}
	cg := cgroup2Dir(t)
	dir := t.TempDir()
	script, progs, base := filepath.Join(dir, "root.sh"), filepath.Join(dir, "bin"), filepath.Join(dir, "root")
	for _, d := range []string{progs, base} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(script, []byte(sdRootScript), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range programs {
		if err := os.WriteFile(filepath.Join(progs, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("sh", "-c", `echo $$ > "$1/cgroup.procs" && exec unshare --mount --pid --fork --uts --ipc --net --cgroup --propagation private "$2" "$3" "$4" "$5"`,
		"sh", cg, script, base, guardBin, progs)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	sd := &realSystemd{t: t}
	t.Cleanup(func() {
		if sd.pid > 0 {
			syscall.Kill(sd.pid, syscall.SIGKILL) // the namespace's init: the kernel kills the rest
		}
		cmd.Process.Kill()
		<-done
	})
	guardtest.Eventually(t, "systemd to start", func() bool {
		select {
		case <-done:
			t.Fatalf("the root for systemd could not be set up: %s", out)
		default:
		}
		b, err := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
		if err != nil {
			return false
		}
		for _, f := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(f)
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "systemd" {
				sd.pid = pid
			}
		}
		// systemd moves itself to init.scope below the cgroup.
		if b, err := os.ReadFile(filepath.Join(cg, "init.scope", "cgroup.procs")); err == nil && sd.pid == 0 {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				sd.pid = pid
			}
		}
		return sd.pid > 0
	})
	guardtest.Eventually(t, "systemd to be running", func() bool {
		o, _ := sd.try("systemctl", "is-system-running")
		return strings.TrimSpace(o) == "running" || strings.TrimSpace(o) == "degraded"
	})
	return sd
}

// try runs a command inside systemd's namespaces and root.
func (sd *realSystemd) try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), guardtest.Patience)
	defer cancel()
	nsenter := append([]string{"-t", strconv.Itoa(sd.pid), "-m", "-p", "-u", "-i", "-n", "-C", "-r", "-w"}, args...)
	out, err := exec.CommandContext(ctx, "nsenter", nsenter...).CombinedOutput()
	return string(out), err
}

// run runs a command inside and fails the test if it fails.
func (sd *realSystemd) run(args ...string) string {
	sd.t.Helper()
	out, err := sd.try(args...)
	if err != nil {
		sd.t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return out
}

// unit installs a unit file inside and reloads systemd's configuration.
func (sd *realSystemd) unit(name, body string) {
	sd.t.Helper()
	sd.run("sh", "-c", fmt.Sprintf("cat > /etc/systemd/system/%s <<'EOF'\n%s\nEOF\nsystemctl daemon-reload", name, body))
}

// show returns a unit property.
func (sd *realSystemd) show(unit, prop string) string {
	sd.t.Helper()
	return strings.TrimSpace(sd.run("systemctl", "show", "--value", "-p", prop, unit))
}

// journal returns the unit's journal entries of guard's (priority, message).
func (sd *realSystemd) journal(unit string) [][2]string {
	sd.t.Helper()
	var got [][2]string
	sc := bufio.NewScanner(strings.NewReader(sd.run("journalctl", "--no-pager", "-o", "json", "-u", unit)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			got = append(got, [2]string{fmt.Sprint(m["PRIORITY"]), fmt.Sprint(m["SYSLOG_IDENTIFIER"]) + ": " + fmt.Sprint(m["MESSAGE"])})
		}
	}
	return got
}

// unitCommon is what every test unit around guard has.
const unitCommon = `KillMode=mixed
SuccessExitStatus=143
RuntimeDirectory=guard
RuntimeDirectoryPreserve=yes`

// The shipped units and guard's datagrams, under a real systemd: Type=notify
// readiness and STATUS=, no readiness when the job cannot start, reloads
// framed by RELOADING=1/READY=1, a standby started at once that takes over,
// the watchdog firing once the lock is lost, readiness relayed from the job
// (--notify job, NotifyAccess=main), a slow stop that TimeoutStopSec does
// not cut short, and guard's lines in the journal at their priorities.
func TestSystemdReal(t *testing.T) {
	sd := bootSystemd(t, map[string]string{
		"worker":  "exec sleep 1000",
		"notifyd": "sleep 1; systemd-notify --ready --status=notifyd-ready; while :; do systemd-notify WATCHDOG=1; sleep 1; done",
	})

	t.Run("notify", func(t *testing.T) {
		sd.unit("t-notify.service", "[Service]\nType=notify\nExecStart=/usr/local/bin/guard run --name tnotify -- /bin/sleep 1000\n"+unitCommon)
		sd.run("systemctl", "start", "t-notify")
		if st := sd.show("t-notify", "StatusText"); !strings.HasPrefix(st, "running job PID ") {
			t.Errorf("StatusText=%q", st)
		}
		sd.run("systemctl", "stop", "t-notify")
		if r := sd.show("t-notify", "Result"); r != "success" {
			t.Errorf("after stop: Result=%s", r)
		}
	})

	t.Run("exec fails: never active", func(t *testing.T) {
		sd.unit("t-missing.service", "[Service]\nType=notify\nExecStart=/usr/local/bin/guard run --name tmissing -- /nonexistent\n"+unitCommon)
		if out, err := sd.try("systemctl", "start", "t-missing"); err == nil {
			t.Fatalf("systemctl start succeeded for a job that cannot start: %s", out)
		}
		if ts := sd.show("t-missing", "ActiveEnterTimestampMonotonic"); ts != "0" {
			t.Errorf("the unit was active at some point (ActiveEnterTimestampMonotonic=%s)", ts)
		}
	})

	t.Run("reload", func(t *testing.T) {
		sd.unit("t-reload.service", "[Service]\nType=notify\nExecStart=/usr/local/bin/guard run --name treload -- /bin/sh -c 'trap \"echo got-hup\" HUP; while :; do sleep 0.1; done'\nExecReload=/bin/kill -HUP $MAINPID\n"+unitCommon)
		sd.run("systemctl", "start", "t-reload")
		sd.run("systemctl", "reload", "t-reload")
		sd.run("systemctl", "reload", "t-reload")
		if s := sd.show("t-reload", "ActiveState"); s != "active" {
			t.Errorf("after two reloads: %s", s)
		}
		guardtest.Eventually(t, "the job to hear both SIGHUPs", func() bool {
			return strings.Count(sd.run("journalctl", "--no-pager", "-o", "cat", "-u", "t-reload"), "got-hup") == 2
		})
		sd.run("systemctl", "stop", "t-reload")
	})

	t.Run("standby", func(t *testing.T) {
		// The shipped standby.service, beside a unit that holds its lock.
		sd.unit("standby.service", string(mustRead(t, depFile(t, "systemd/standby.service"))))
		sd.unit("t-holder.service", "[Service]\nType=notify\nExecStart=/usr/local/bin/guard run --name worker -- /bin/sleep 1000\n"+unitCommon)
		sd.run("systemctl", "start", "t-holder")
		began := time.Now()
		sd.run("systemctl", "start", "standby") // returns at once: READY=1 with STATUS=standby
		if st := sd.show("standby", "StatusText"); !strings.HasPrefix(st, "standby: waiting for /run/guard/worker.lock, held by PID ") {
			t.Fatalf("standby StatusText=%q", st)
		}
		if time.Since(began) > guardtest.Patience/2 {
			t.Errorf("systemctl start of the standby took %v", time.Since(began))
		}
		sd.run("systemctl", "stop", "t-holder")
		guardtest.Eventually(t, "the standby to take over", func() bool {
			return strings.HasPrefix(sd.show("standby", "StatusText"), "running job PID ")
		})
		sd.run("systemctl", "stop", "standby")
		if r := sd.show("standby", "Result"); r != "success" {
			t.Errorf("standby after stop: Result=%s", r)
		}
	})

	t.Run("watchdog", func(t *testing.T) {
		sd.unit("t-watchdog.service", "[Service]\nType=notify\nExecStart=/usr/local/bin/guard run --name twatchdog --kill-after 60s -- /bin/sh -c 'trap \"\" TERM; exec sleep 1000'\nWatchdogSec=2s\nTimeoutStopSec=90s\n"+unitCommon)
		sd.run("systemctl", "start", "t-watchdog")
		time.Sleep(5 * time.Second) // longer than WatchdogSec: guard's pings keep it alive
		if s, r := sd.show("t-watchdog", "ActiveState"), sd.show("t-watchdog", "Result"); s != "active" || r != "success" {
			t.Fatalf("with guard pinging, after 5s: %s, %s", s, r)
		}
		// The lock file replaced and locked by someone else: guard cannot
		// take it again, stops pinging while it stops a job that ignores
		// SIGTERM, and systemd's watchdog fires.
		sd.run("systemd-run", "--unit=t-thief", "-p", "Type=exec", "sh", "-c",
			"rm /run/guard/twatchdog.lock; exec flock -n /run/guard/twatchdog.lock sleep 1000")
		guardtest.Eventually(t, "the watchdog to fire", func() bool { return sd.show("t-watchdog", "Result") == "watchdog" })
		sd.try("systemctl", "stop", "t-thief", "t-watchdog")
	})

	t.Run("relay", func(t *testing.T) {
		sd.unit("relay.service", string(mustRead(t, depFile(t, "systemd/relay.service"))))
		sd.run("systemctl", "start", "relay") // until notifyd itself says READY=1
		if st := sd.show("relay", "StatusText"); st != "notifyd-ready" {
			t.Errorf("relay StatusText=%q, want notifyd's own", st)
		}
		if m, s := sd.show("relay", "MainPID"), sd.show("relay", "ActiveState"); m == "0" || s != "active" {
			t.Errorf("MainPID=%s ActiveState=%s", m, s)
		}
		sd.run("systemctl", "stop", "relay")
	})

	t.Run("slow stop and journal priorities", func(t *testing.T) {
		sd.unit("t-slowstop.service", "[Service]\nType=notify\nExecStart=/usr/local/bin/guard run --name tslowstop --kill-after 4s -- /bin/sh -c 'trap \"\" TERM; exec sleep 1000'\nTimeoutStopSec=2s\n"+unitCommon)
		sd.run("systemctl", "start", "t-slowstop")
		sd.run("systemctl", "stop", "t-slowstop")
		var kill, escalate bool
		for _, e := range sd.journal("t-slowstop") {
			switch {
			case strings.Contains(e[1], "timed out"):
				t.Errorf("systemd cut the stop short: %q", e[1])
			case strings.HasPrefix(e[1], "guard: ") && strings.Contains(e[1], "sending SIGKILL"):
				escalate = e[0] == "4"
			case strings.HasPrefix(e[1], "guard: ") && strings.Contains(e[1], "killed by SIGKILL"):
				kill = e[0] == "3"
			}
		}
		if !kill || !escalate {
			t.Errorf("guard's escalation at priority 4 and the job's end at 3 not in the journal: %q", sd.journal("t-slowstop"))
		}
	})

	t.Run("bounded wait extends the start timeout", func(t *testing.T) {
		sd.unit("t-hold2.service", "[Service]\nType=notify\nExecStart=/usr/local/bin/guard run --name twait -- /bin/sleep 1000\n"+unitCommon)
		sd.unit("t-wait.service", "[Service]\nType=notify\nExecStart=/usr/local/bin/guard run --name twait --wait 60s -- /bin/sleep 1000\nTimeoutStartSec=2s\n"+unitCommon)
		sd.run("systemctl", "start", "t-hold2")
		sd.run("systemctl", "start", "--no-block", "t-wait")
		time.Sleep(4 * time.Second) // past TimeoutStartSec
		if s := sd.show("t-wait", "ActiveState"); s != "activating" {
			t.Fatalf("t-wait after 4s: %s, want activating (the start timeout extended)", s)
		}
		sd.run("systemctl", "stop", "t-hold2")
		guardtest.Eventually(t, "t-wait to become active", func() bool { return sd.show("t-wait", "ActiveState") == "active" })
		sd.run("systemctl", "stop", "t-wait")
	})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
