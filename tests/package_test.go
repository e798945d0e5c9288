package tests

// The .deb, as a sysadmin gets it: make deb, its files and modes, lintian,
// dpkg -i, then guard version, the man page and the shell completions as
// the installed system finds them, and dpkg --purge.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/guardtest"
)

// makeDeb runs make deb into a temporary directory and returns the .deb.
func makeDeb(t *testing.T, version string) string {
	t.Helper()
	guardtest.RequirePeer(t, "dpkg-deb", "dpkg")
	bin := t.TempDir()
	cmd := exec.Command("make", "-C", depRepo(t), "deb", "BIN="+bin, "VERSION="+version)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(bin, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb made %v, want one .deb", debs)
	}
	return debs[0]
}

// The package's files: root-owned, nothing writable by group or others,
// programs 0755 and everything else 0644; the man pages, completions,
// examples and copyright where Debian's tools look for them.
func TestDebContents(t *testing.T) {
	deb := makeDeb(t, "v1.2.3-4-gabcdef0")
	if base := filepath.Base(deb); !strings.HasPrefix(base, "guard_1.2.3+4.gabcdef0_") {
		t.Errorf("%s: want the Debian version 1.2.3+4.gabcdef0 from git describe's v1.2.3-4-gabcdef0", base)
	}
	out, err := exec.Command("dpkg-deb", "-c", deb).Output()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	line := regexp.MustCompile(`^([-dl])([rwxsStT-]{9}) (\S+)/(\S+) +\d+ \S+ \S+ \./(.*)$`)
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("dpkg-deb -c: unexpected line %q", l)
			continue
		}
		kind, mode, owner, group, path := m[1], m[2], m[3], m[4], strings.TrimSuffix(m[5], "/")
		if owner != "root" || group != "root" {
			t.Errorf("%s: owned by %s/%s, want root/root", path, owner, group)
		}
		want := "rw-r--r--"
		switch {
		case kind == "d", strings.HasPrefix(path, "usr/bin/"):
			want = "rwxr-xr-x"
		case kind == "l":
			want = mode
		}
		if mode != want {
			t.Errorf("%s: mode %s, want %s", path, mode, want)
		}
		files[path] = true
	}
	for _, f := range []string{
		"usr/bin/guard", "usr/bin/guard-etcd",
		"usr/share/man/man1/guard.1.gz", "usr/share/man/man1/guard-etcd.1.gz",
		"usr/share/bash-completion/completions/guard",
		"usr/share/zsh/vendor-completions/_guard",
		"usr/share/fish/vendor_completions.d/guard.fish",
		"usr/share/doc/guard/copyright", "usr/share/doc/guard/docs/run.md.gz", "usr/share/doc/guard/changelog.Debian.gz",
		"usr/share/doc/guard/examples/systemd/backup.service", "usr/share/doc/guard/examples/systemd/backup.timer",
		"usr/share/doc/guard/examples/systemd/example.service", "usr/share/doc/guard/examples/cron/guard.cron",
	} {
		if !files[f] {
			t.Errorf("the package has no %s", f)
		}
	}
	lintian, err := exec.LookPath("lintian")
	if err != nil {
		guardtest.Missing(t, "lintian not found (install the Debian package lintian)")
		return
	}
	r := run(t, lintian, "--info", "--pedantic", "--display-experimental", deb)
	tags := regexp.MustCompile(`(?m)^[EWIPX]: .*$`).FindAllString(r.stdout+r.stderr, -1)
	if r.code != 0 || len(tags) > 0 {
		t.Errorf("lintian: exit %d\n%s", r.code, strings.Join(tags, "\n"))
	}
}

// dpkg -i, then the installed guard as a user meets it; dpkg --purge at the
// end, whatever happens.
func TestDebInstall(t *testing.T) {
	guardtest.RequirePeer(t, "dpkg", "dpkg")
	guardtest.RequirePeer(t, "man", "man-db")
	if os.Geteuid() != 0 {
		guardtest.Missing(t, "dpkg -i needs root")
	}
	if _, err := os.Stat("/usr/bin/guard"); err == nil {
		guardtest.Missing(t, "/usr/bin/guard exists already: not overwriting it (dpkg --purge guard first)")
	}
	deb := makeDeb(t, "v0.0.0-debtest")
	t.Cleanup(func() {
		if out, err := exec.Command("dpkg", "--purge", "guard").CombinedOutput(); err != nil {
			t.Errorf("dpkg --purge guard: %v\n%s", err, out)
		}
		if _, err := os.Stat("/usr/bin/guard"); err == nil {
			t.Error("/usr/bin/guard is still there after dpkg --purge")
		}
	})
	if out, err := exec.Command("dpkg", "-i", deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	for _, bin := range []string{"guard", "guard-etcd"} {
		if r := run(t, "/usr/bin/"+bin, "version"); r.code != 0 || !strings.HasPrefix(r.stdout, bin+" v0.0.0-debtest ") {
			t.Errorf("%s version: exit %d, %q", bin, r.code, r.stdout)
		}
	}
	// The examples name guard where the package put it.
	if b, err := os.ReadFile("/usr/share/doc/guard/examples/systemd/backup.service"); err != nil ||
		!strings.Contains(string(b), "ExecStart=/usr/bin/guard run") || strings.Contains(string(b), "/usr/local/bin/guard") {
		t.Errorf("the packaged backup.service does not run /usr/bin/guard: %v\n%s", err, b)
	}
	// The man page, found by man itself and formatted without warnings.
	if r := run(t, "man", "-w", "guard"); strings.TrimSpace(r.stdout) != "/usr/share/man/man1/guard.1.gz" {
		t.Errorf("man -w guard: %q %q", r.stdout, r.stderr)
	}
	cmd := exec.Command("man", "--warnings", "-l", "/usr/share/man/man1/guard.1.gz")
	cmd.Env = append(os.Environ(), "MANPAGER=cat", "PAGER=cat", "MANWIDTH=80", "LC_ALL=C.UTF-8")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--conflict-exit CODE") || strings.Contains(string(out), "warning") {
		t.Errorf("man -l guard.1.gz: %v\n%s", err, out)
	}
	// bash: the file alone in a clean bash, and through bash-completion's
	// loader, which finds it by the command's name.
	script := `source /usr/share/bash-completion/completions/guard || exit 1
complete -p guard
COMP_WORDS=(guard run --conf); COMP_CWORD=2; _guard; echo "1:${COMPREPLY[*]}"
COMP_WORDS=(guard run --leftovers ""); COMP_CWORD=3; _guard; echo "2:${COMPREPLY[*]}"
COMP_WORDS=(guard st); COMP_CWORD=1; _guard; echo "3:${COMPREPLY[*]}"
COMP_WORDS=(guard status --lock = /usr/share/bash-compl); COMP_CWORD=4; _guard; echo "4:${COMPREPLY[*]}"
COMP_WORDS=(guard run --leftovers =); COMP_CWORD=3; _guard; echo "5:${COMPREPLY[*]}"
COMP_WORDS=(guard run --name x -- slee); COMP_CWORD=5; _guard; echo "6:${COMPREPLY[*]}"`
	r := run(t, "bash", "--norc", "--noprofile", "-c", script)
	for _, want := range []string{"complete -F _guard guard", "1:--conflict-exit", "2:kill wait ignore", "3:status stop", "4:/usr/share/bash-completion", "5:kill wait ignore", "6:sleep"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("bash completion: no %q in %q (%s)", want, r.stdout, r.stderr)
		}
	}
	if _, err := os.Stat("/usr/share/bash-completion/bash_completion"); err != nil {
		guardtest.Missing(t, "bash-completion not installed (install the Debian package bash-completion)")
	} else {
		r = run(t, "bash", "--norc", "--noprofile", "-c", "source /usr/share/bash-completion/bash_completion; __load_completion guard; complete -p guard")
		if !strings.Contains(r.stdout, "complete -F _guard guard") {
			t.Errorf("bash-completion does not load guard's completion: %q %q", r.stdout, r.stderr)
		}
	}
	// fish finds it in vendor_completions.d by itself.
	if fish, err := exec.LookPath("fish"); err != nil {
		guardtest.Missing(t, "fish not found (install the Debian package fish)")
	} else {
		// An empty home, so no user configuration (fish --no-config would
		// skip the vendor completions too).
		home := t.TempDir()
		cmd := exec.Command(fish, "-c", "complete -C 'guard run --conf'; complete -C 'guard stat'; complete -C 'guard run --name x -- slee'")
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_DATA_HOME="+home)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--conflict-exit") || !strings.Contains(string(out), "status") || !strings.Contains(string(out), "sleep") {
			t.Errorf("fish completion (--conflict-exit, status, the command sleep after --): %v %q", err, out)
		}
	}
	// zsh: compinit finds _guard in the vendor directory and binds it.
	if zsh, err := exec.LookPath("zsh"); err != nil {
		guardtest.Missing(t, "zsh not found (install the Debian package zsh)")
	} else {
		if r := run(t, zsh, "-n", "/usr/share/zsh/vendor-completions/_guard"); r.code != 0 {
			t.Errorf("zsh -n _guard: %s", r.stderr)
		}
		dump := filepath.Join(t.TempDir(), "zcompdump")
		r := run(t, zsh, "-f", "-c", "autoload -Uz compinit && compinit -u -d "+dump+" && print -r -- ${_comps[guard]}")
		if strings.TrimSpace(r.stdout) != "_guard" {
			t.Errorf("zsh: compinit binds guard to %q, want _guard (%s)", r.stdout, r.stderr)
		}
		// An interactive zsh on a pseudo-terminal (zpty) lists the values
		// of --leftovers, completes --conf to --conflict-exit and sta to
		// status: zpty -r waits for the last expected word (and the test's
		// deadline ends the wait if it never comes).
		for line, want := range map[string][]string{
			"guard run --leftovers \\t": {"ignore", "kill", "wait"},
			"guard run --conf\\t":       {"--conflict-exit"},
			"guard sta\\t":              {"status"},
		} {
			script := `zmodload zsh/zpty
zpty z 'zsh -f -i'
zpty -w z 'PS1="> "; autoload -Uz compinit; compinit -u -D; echo RE""ADY'
zpty -r z line '*READY*'
zpty -w -n z $'` + line + `'
zpty -r z out '*` + want[len(want)-1] + `*'
print -r -- "$out"
zpty -d z`
			ctx, cancel := context.WithTimeout(context.Background(), guardtest.Patience)
			zc := exec.CommandContext(ctx, zsh, "-f", "-c", script)
			zc.WaitDelay = time.Second // the zpty's shell may hold the pipe
			out, err := zc.CombinedOutput()
			cancel()
			for _, w := range want {
				if err != nil || !strings.Contains(string(out), w) {
					t.Errorf("zsh: %q does not offer %q: %v %q", line, w, err, out)
				}
			}
		}
	}
}
