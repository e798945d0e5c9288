package tests

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Help as a user asks for it: guard help CMD and CMD --help print the same
// flags, GNU-style, on stdout with exit 0; mistakes are one line and 64.
func TestHelp(t *testing.T) {
	for _, cmd := range []string{"run", "status", "stop", "reload", "version", "completion"} {
		h, f := guard(t, "help", cmd), guard(t, cmd, "--help")
		if h.code != 0 || f.code != 0 || h.stdout != f.stdout || h.stderr != "" {
			t.Errorf("guard help %s (exit %d) and guard %s --help (exit %d) differ:\n%s\n---\n%s%s", cmd, h.code, cmd, f.code, h.stdout, f.stdout, h.stderr)
		}
		if !strings.HasPrefix(h.stdout, "usage: guard "+cmd) {
			t.Errorf("guard help %s: %q", cmd, h.stdout)
		}
		for _, line := range strings.Split(h.stdout, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "-") && !strings.HasPrefix(strings.TrimSpace(line), "--") {
				t.Errorf("guard help %s: a single-dash flag: %q", cmd, line)
			}
		}
	}
	run := guard(t, "help", "run").stdout
	for _, want := range []string{"--wait DURATION", "--conflict-exit CODE", "--leftovers kill|wait|ignore", "--lock PATH", "--quiet\n", "(default 75)"} {
		if !strings.Contains(run, want) {
			t.Errorf("guard help run: no %q in\n%s", want, run)
		}
	}
	v := guard(t, "version")
	if r := guard(t, "--version"); r.code != 0 || r.stdout != v.stdout || !strings.HasPrefix(v.stdout, "guard ") {
		t.Errorf("guard --version: exit %d %q; guard version: %q", r.code, r.stdout, v.stdout)
	}
	if r := guard(t, "help"); r.code != 0 || !strings.Contains(r.stdout, "guard completion bash|zsh|fish") {
		t.Errorf("guard help: exit %d %q", r.code, r.stdout)
	}
	for _, args := range [][]string{
		{"help", "bogus"}, {"help", "run", "stop"}, {"bogus"}, {"completion", "tcsh"}, {"completion"},
		{"run", "--bogus", "--", "true"}, {"status", "--lock"}, {"version", "extra"},
	} {
		r := guard(t, args...)
		if r.code != 64 || strings.Count(r.stderr, "\n") != 1 || r.stdout != "" {
			t.Errorf("guard %s: exit %d, stdout %q, stderr %q; want 64 and one line", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stderr, " -bogus") || strings.Contains(r.stderr, " -lock") {
			t.Errorf("guard %s: a single-dash flag in %q", strings.Join(args, " "), r.stderr)
		}
	}
	if r := guard(t); r.code != 64 || !strings.Contains(r.stderr, "usage:") {
		t.Errorf("guard without a command: exit %d %q", r.code, r.stderr)
	}
}

// GUARD_PARSE_ONLY=1 still checks a command line and acts on nothing.
func TestHelpParseOnly(t *testing.T) {
	dir := lockDir(t)
	for args, want := range map[string]int{
		"run --lock " + dir + "/x.lock -- touch " + dir + "/ran": 0,
		"run --lock " + dir + "/x.lock --wait soon -- true":      64,
		"completion bash":         0,
		"completion tcsh":         64,
		"status --name x --bogus": 64,
	} {
		cmd := exec.Command(guardBin, strings.Fields(args)...)
		cmd.Env = append(os.Environ(), "GUARD_PARSE_ONLY=1")
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != want {
			t.Errorf("GUARD_PARSE_ONLY=1 guard %s: exit %d, want %d (%s)", args, code, want, out)
		}
	}
	if _, err := os.Stat(dir + "/ran"); err == nil {
		t.Error("the job ran in parse-only mode")
	}
}
