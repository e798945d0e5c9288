package tests

// The files in deploy/, checked the way their consumers read them:
// systemd-analyze for the units, promtool for the Prometheus files, a YAML
// parser for the Kubernetes manifests, the Dockerfile's own build commands
// and entrypoint run in a PID namespace, and every guard command line in them
// against the real binary (GUARD_PARSE_ONLY=1). cmd/example command lines
// are run for real; while cmd/example does not exist, those checks skip.
//
// This file: finding deploy/'s files, splitting their shell text, and the
// guard command lines in them, each parsed by the real binary.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// depRepo returns the repository root (go test runs in tests/).
func depRepo(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// depFile returns the path of a file under deploy/.
func depFile(t *testing.T, rel string) string {
	t.Helper()
	return filepath.Join(depRepo(t), "deploy", rel)
}

func depRead(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(depFile(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// shellCommands splits shell text into simple commands (at newlines, ';',
// '&', '&&', '||' and '|'), each a list of words with quotes removed. It
// knows quotes, backslashes and comments, which is all deploy/ uses; it
// expands nothing.
func shellCommands(s string) [][]string {
	var cmds [][]string
	var words []string
	var w strings.Builder
	inWord := false
	endWord := func() {
		if inWord {
			words = append(words, w.String())
		}
		w.Reset()
		inWord = false
	}
	endCmd := func() {
		endWord()
		if len(words) > 0 {
			cmds = append(cmds, words)
		}
		words = nil
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			if s[i] != '\n' {
				w.WriteByte(s[i])
				inWord = true
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				j = len(s) - i - 1
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`\n", s[i+1]) >= 0 {
					i++
				}
				w.WriteByte(s[i])
			}
			inWord = true
		case c == '#' && !inWord:
			for i+1 < len(s) && s[i+1] != '\n' {
				i++
			}
		case c == ' ' || c == '\t':
			endWord()
		case c == '\n' || c == ';' || c == '&' || c == '|':
			endCmd()
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	endCmd()
	return cmds
}

var depSubcommands = []string{"run", "status", "stop", "reload", "version"}

// guardArgs returns the arguments of a guard invocation in words (those
// after the program), or nil if words do not run guard.
func guardArgs(words []string) []string {
	for i, w := range words {
		if filepath.Base(w) == "guard" && i+1 < len(words) && slices.Contains(depSubcommands, words[i+1]) {
			return words[i+1:]
		}
	}
	return nil
}

type depGuardLine struct {
	src  string   // file and place
	args []string // after "guard"
}

func depFlag(args []string, name string) string {
	for i, a := range args {
		if a == "--" {
			break
		}
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// depAllGuardLines extracts every guard command line in deploy/.
func depAllGuardLines(t *testing.T) []depGuardLine {
	t.Helper()
	var out []depGuardLine
	add := func(src string, words []string) {
		if a := guardArgs(words); a != nil {
			out = append(out, depGuardLine{src, a})
		}
	}
	units, _ := filepath.Glob(depFile(t, "systemd/*.service"))
	for _, u := range units {
		b, _ := os.ReadFile(u)
		lines, keys := depUnitExecs(string(b))
		for i, words := range lines {
			add("systemd/"+filepath.Base(u)+" "+keys[i], words)
		}
	}
	for i, job := range depCronJobs(t, depRead(t, "cron/guard.cron")) {
		for _, words := range shellCommands(job) {
			add(fmt.Sprintf("cron/guard.cron job %d", i+1), words)
		}
	}
	d := depDockerfile(t)
	add("container/Dockerfile ENTRYPOINT+CMD", append(slices.Clone(d.entrypoint), d.cmd...))
	add("container/Dockerfile HEALTHCHECK", d.healthcheck)
	manifests, _ := filepath.Glob(depFile(t, "kubernetes/*.yaml"))
	for _, f := range manifests {
		for _, k := range depK8sContainers(depYAML(t, f)) {
			for _, words := range k.commands(d) {
				add(fmt.Sprintf("kubernetes/%s %s/%s", filepath.Base(f), depGet(k.doc, "kind"), depGet(k.c, "name")), words)
			}
		}
	}
	return out
}

func depParseOnly(t *testing.T, args []string) result {
	t.Helper()
	cmd := exec.Command(guardBin, args...)
	cmd.Env = append(os.Environ(), "GUARD_PARSE_ONLY=1", "GUARD_DIR="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
}

// Every guard command line in deploy/ parses with the real binary, and the
// check bites: each line with a flag renamed is a usage error (64).
func TestDeployGuardCommandLines(t *testing.T) {
	lines := depAllGuardLines(t)
	// Where guard lines must be found: an extraction that finds nothing
	// would pass vacuously.
	want := map[string]int{
		"systemd/backup.service":         1,
		"systemd/legacy-forking.service": 1,
		"cron/guard.cron":                4,
		"container/Dockerfile":           2,
		"kubernetes/example.yaml":        1,
		"kubernetes/backup-cronjob.yaml": 1,
	}
	got := map[string]int{}
	for _, l := range lines {
		got[strings.Fields(l.src)[0]]++
	}
	for f, n := range want {
		if got[f] < n {
			t.Errorf("%s: found %d guard command lines, want at least %d", f, got[f], n)
		}
	}
	for _, l := range lines {
		r := depParseOnly(t, l.args)
		if r.code != 0 {
			t.Errorf("%s: guard %s: exit %d, want 0: %s", l.src, strings.Join(l.args, " "), r.code, r.stderr)
		} else {
			t.Logf("%s: guard %s: ok", l.src, strings.Join(l.args, " "))
		}
		// The same line with its first flag renamed must be refused.
		broken := slices.Clone(l.args)
		for i, a := range broken {
			if strings.HasPrefix(a, "--") && a != "--" {
				broken[i] = a + "-renamed"
				break
			}
		}
		if r := depParseOnly(t, broken); r.code != 64 {
			t.Errorf("%s: broken line guard %s: exit %d, want 64 (usage)", l.src, strings.Join(broken, " "), r.code)
		}
	}
	if r := depParseOnly(t, []string{"run", "--name", "x", "--timeout", "soon", "--", "true"}); r.code != 64 {
		t.Errorf("a bad --timeout value: exit %d, want 64", r.code)
	}
}

// Each deploy folder says what its files are for, how to install them and
// how they are checked.
func TestDeployReadmes(t *testing.T) {
	for _, dir := range []string{"systemd", "cron", "container", "kubernetes", "prometheus"} {
		b, err := os.ReadFile(depFile(t, dir+"/README.md"))
		if err != nil {
			t.Errorf("deploy/%s: %v", dir, err)
			continue
		}
		// It names the test file that checks the folder, and that file exists.
		test := "tests/deploy_" + dir + "_test.go"
		if !strings.Contains(string(b), test) {
			t.Errorf("deploy/%s/README.md does not say how it is checked (%s)", dir, test)
		}
		if _, err := os.Stat(filepath.Join(depRepo(t), test)); err != nil {
			t.Errorf("deploy/%s/README.md names %s: %v", dir, test, err)
		}
	}
}
