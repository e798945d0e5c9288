package tests

// deploy/systemd: the units verified by systemd-analyze, consistent with
// the guard lines they run, and example.service's ExecStart run.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/guardtest"
)

// depUnitExecs returns the Exec*= command lines of a unit file, as words.
func depUnitExecs(text string) (lines [][]string, keys []string) {
	for _, l := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if !ok || !strings.HasPrefix(k, "Exec") {
			continue
		}
		v = strings.TrimLeft(v, "@-:+!") // systemd's command prefixes
		if cmds := shellCommands(v); len(cmds) > 0 {
			lines, keys = append(lines, cmds[0]), append(keys, k)
		}
	}
	return lines, keys
}

// depUnitFiles copies the units into a directory with /usr/local/bin/guard
// (and example, once built) pointing at built binaries. It returns the
// directory and the install paths left unmapped.
func depUnitFiles(t *testing.T) (string, []string) {
	t.Helper()
	m := depPathMap{"/usr/local/bin/guard": guardBin}
	var unmapped []string
	if depExampleExists(t) {
		m["/usr/local/bin/example"] = depExampleBin(t)
	} else {
		unmapped = append(unmapped, "/usr/local/bin/example")
	}
	dir := t.TempDir()
	files, _ := filepath.Glob(depFile(t, "systemd/*.service"))
	timers, _ := filepath.Glob(depFile(t, "systemd/*.timer"))
	for _, f := range append(files, timers...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for k, v := range m {
			text = strings.ReplaceAll(text, k+" ", v+" ")
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, unmapped
}

// systemd-analyze verify finds nothing to say about the units, but that a
// program not built yet is missing.
func TestDeploySystemdVerify(t *testing.T) {
	sa := guardtest.RequirePeer(t, "systemd-analyze", "systemd")
	dir, unmapped := depUnitFiles(t)
	units, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(units) < 7 {
		t.Fatalf("want example, backup, legacy-forking, standby, notify-reload and relay .service and backup.timer, got %v", units)
	}
	cmd := exec.Command(sa, append([]string{"verify"}, units...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	var bad []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		missing := false
		for _, p := range unmapped {
			missing = missing || regexp.MustCompile(`^[\w@.-]+\.service: Command `+regexp.QuoteMeta(p)+` is not executable: No such file or directory$`).MatchString(l)
		}
		// systemd < 253 knows no Type=notify-reload (deploy/systemd/README.md).
		missing = missing || depSystemdBefore(t, 253) &&
			regexp.MustCompile(`/notify-reload\.service:[0-9]+: Failed to parse service type, ignoring: notify-reload$`).MatchString(l)
		if l != "" && !missing {
			bad = append(bad, l)
		}
	}
	if len(bad) > 0 || (err != nil && len(unmapped) == 0) {
		t.Fatalf("systemd-analyze verify (%v):\n%s", err, strings.Join(bad, "\n"))
	}
	// The hardening of example.service stays where it is (0 best, 10 worst).
	sec := exec.Command(sa, "security", "--offline=yes", "--threshold=30", filepath.Join(dir, "example.service"))
	sec.Dir = dir
	if out, err := sec.CombinedOutput(); err != nil {
		t.Errorf("systemd-analyze security example.service: exposure over 3.0 (%v):\n%s", err, out)
	}
}

// depUnit parses a unit file into its settings (last value wins; Exec
// lines as written).
func depUnit(t *testing.T, name string) map[string]string {
	t.Helper()
	u := map[string]string{}
	for _, l := range strings.Split(depRead(t, "systemd/"+name), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok && !strings.HasPrefix(k, "#") {
			u[k] = v
		}
	}
	return u
}

// The units agree with the guard command lines they run: systemd's limits
// leave guard's --timeout room to act, the PID file is the one guard
// writes, TERM goes to guard alone, and the lock directory exists.
func TestDeploySystemdConsistent(t *testing.T) {
	for _, name := range []string{"backup.service", "legacy-forking.service", "example.service",
		"standby.service", "notify-reload.service", "relay.service"} {
		t.Run(name, func(t *testing.T) {
			u := depUnit(t, name)
			words := shellCommands(strings.TrimLeft(u["ExecStart"], "@-:+!"))[0]
			if u["RuntimeDirectory"] != "guard" || u["RuntimeDirectoryPreserve"] != "yes" {
				t.Errorf("want RuntimeDirectory=guard and RuntimeDirectoryPreserve=yes (the lock directory, shared by the units), got %q, %q", u["RuntimeDirectory"], u["RuntimeDirectoryPreserve"])
			}
			args := guardArgs(words)
			if args == nil { // the example daemon: its lock under /run/guard
				if l := depFlag(words, "--lock"); !strings.HasPrefix(l, "/run/guard/") {
					t.Errorf("--lock %q: want it under /run/guard", l)
				}
				if u["Type"] != "notify" && u["Type"] != "notify-reload" || u["WatchdogSec"] == "" {
					t.Errorf("want Type=notify(-reload) and WatchdogSec=, got %q, %q", u["Type"], u["WatchdogSec"])
				}
				return
			}
			if u["KillMode"] != "mixed" {
				t.Errorf("KillMode=%q: want mixed, so that TERM reaches guard alone and guard stops the job's group", u["KillMode"])
			}
			if timeout := depFlag(args, "--timeout"); timeout != "" {
				tg, _ := time.ParseDuration(timeout)
				ka, err := time.ParseDuration(depFlag(args, "--kill-after"))
				if err != nil {
					ka = 10 * time.Second
				}
				ts, err := time.ParseDuration(u["TimeoutStartSec"])
				if err != nil || ts <= tg+ka {
					t.Errorf("TimeoutStartSec=%s: want more than guard's --timeout %s + --kill-after %s", u["TimeoutStartSec"], tg, ka)
				}
			}
			if pf := depFlag(args, "--pidfile"); u["Type"] == "forking" && pf != u["PIDFile"] {
				t.Errorf("PIDFile=%s but guard writes --pidfile %s", u["PIDFile"], pf)
			}
			if u["Type"] == "forking" && !slices.Contains(args, "--detach") {
				t.Errorf("Type=forking without guard run --detach")
			}
			depCheckNotify(t, u, args)
		})
	}
	if tm := depUnit(t, "backup.timer"); tm["Unit"] != "backup.service" || tm["OnCalendar"] == "" {
		t.Errorf("backup.timer: want OnCalendar= and Unit=backup.service, got %v", tm)
	}
}

// example.service's ExecStart runs: the example daemon with the shipped
// configuration becomes ready, and SIGTERM stops it with 0.
func TestDeploySystemdExampleRuns(t *testing.T) {
	example := depExampleBin(t)
	lines, keys := depUnitExecs(depRead(t, "systemd/example.service"))
	i := slices.Index(keys, "ExecStart")
	m := depPathMap{
		"/usr/local/bin/example":    example,
		"/etc/example/example.conf": depFile(t, "systemd/example.conf"),
		"/run/guard":                t.TempDir(),
		"/usr/local/bin/guard":      guardBin,
	}
	argv, port, addr := depListen(t, m.argv(lines[i]))
	if port != "8080" {
		t.Errorf("example.service listens on port %s; prometheus.yml scrapes 8080", port)
	}
	p := depStart(t, nil, argv...)
	depServes(t, p, addr)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0:\n%s", code, p.stderr.String())
	}
}

// depCheckNotify checks what each notify unit needs from guard run: a
// standby says READY=1 itself (Type=notify, not exec or simple); notify-reload
// has no ExecReload= (systemd sends the signal); --notify job wants
// NotifyAccess=main (guard relays) and no --detach.
func depCheckNotify(t *testing.T, u map[string]string, args []string) {
	t.Helper()
	notify := u["Type"] == "notify" || u["Type"] == "notify-reload"
	if depFlag(args, "--wait") == "forever" && !notify {
		t.Errorf("--wait forever with Type=%s: want Type=notify, so the standby is started at once", u["Type"])
	}
	if u["Type"] == "notify-reload" && u["ExecReload"] != "" {
		t.Errorf("Type=notify-reload with ExecReload=%s: systemd sends SIGHUP itself", u["ExecReload"])
	}
	if depFlag(args, "--notify") == "job" && (!notify || u["NotifyAccess"] != "main" || slices.Contains(args, "--detach")) {
		t.Errorf("--notify job: want Type=notify(-reload), NotifyAccess=main and no --detach")
	}
	if notify && depFlag(args, "--notify") == "none" && u["NotifyAccess"] != "all" {
		t.Errorf("--notify none under Type=%s: the job must speak itself, with NotifyAccess=all", u["Type"])
	}
}

// depSystemdBefore reports whether the installed systemd is older than v.
func depSystemdBefore(t *testing.T, v int) bool {
	t.Helper()
	out, err := exec.Command("systemctl", "--version").Output()
	if err != nil {
		return false
	}
	var n int
	if _, err := fmt.Sscanf(string(out), "systemd %d", &n); err != nil {
		return false
	}
	return n < v
}
