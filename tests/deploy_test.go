package tests

// The files in deploy/, checked the way their consumers read them:
// systemd-analyze for the units, promtool for the Prometheus files, a YAML
// parser for the Kubernetes manifests, the Dockerfile's own build commands
// and entrypoint run in a PID namespace, and every guard command line in them
// against the real binary (GUARD_PARSE_ONLY=1). cmd/example command lines
// are run for real; while cmd/example does not exist, those checks skip.

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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

// depBinDir is where this file's binaries go: next to the guard binary
// TestMain built (and removes), or a directory of its own.
var depBinDir = sync.OnceValues(func() (string, error) {
	if os.Getenv("GUARD_TEST_BIN") != "" {
		return os.MkdirTemp("", "guard-deploy-")
	}
	return filepath.Dir(guardBin), nil
})

// depExampleExists reports whether cmd/example has been written yet.
func depExampleExists(t *testing.T) bool {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(depRepo(t), "cmd", "example", "*.go"))
	return len(m) > 0
}

var depExample struct {
	once sync.Once
	path string
	err  error
}

// depExampleBin builds cmd/example once, or skips the test (never fails it,
// GUARD_REQUIRE_PEERS or not) while cmd/example does not exist yet.
func depExampleBin(t *testing.T) string {
	t.Helper()
	if !depExampleExists(t) {
		t.Skip("cmd/example does not exist yet: skipping the checks that run the example daemon")
	}
	depExample.once.Do(func() {
		dir, err := depBinDir()
		if err != nil {
			depExample.err = err
			return
		}
		depExample.path = filepath.Join(dir, "example-deploy")
		if out, err := exec.Command("go", "build", "-o", depExample.path, "guard/cmd/example").CombinedOutput(); err != nil {
			depExample.err = fmt.Errorf("build guard/cmd/example: %v\n%s", err, out)
		}
	})
	if depExample.err != nil {
		t.Fatal(depExample.err)
	}
	return depExample.path
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

// --- Dockerfile -----------------------------------------------------------

type dockerCopy struct {
	from  string // --from stage, "" for the build context
	srcs  []string
	dest  string
	chown string
}

// dockerfile is what the tests need of deploy/container/Dockerfile.
type dockerfile struct {
	stages      []string          // stage names (or images) in order
	args        map[string]string // ARG defaults
	builds      [][]string        // RUN lines that run go build, as words
	copies      []dockerCopy      // COPY in the final stage
	env         map[string]string // ENV in the final stage
	entrypoint  []string
	cmd         []string
	healthcheck []string
	user        string
	expose      []string
}

func parseDockerfile(t *testing.T, text string) *dockerfile {
	t.Helper()
	d := &dockerfile{args: map[string]string{}, env: map[string]string{}}
	var lines []string
	var cont strings.Builder
	for _, l := range strings.Split(text, "\n") {
		if trimmed := strings.TrimSpace(l); trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(strings.TrimRight(l, " \t"), "\\"); ok {
			cont.WriteString(s + " ")
			continue
		}
		cont.WriteString(l)
		lines = append(lines, cont.String())
		cont.Reset()
	}
	jsonArray := func(instr, s string) []string {
		var a []string
		if err := json.Unmarshal([]byte(strings.TrimSpace(s)), &a); err != nil || len(a) == 0 {
			t.Fatalf("Dockerfile: %s %s: want the exec (JSON array) form, so that no shell stands in as PID 1 (%v)", instr, s, err)
		}
		return a
	}
	expand := func(s string) string {
		return os.Expand(s, func(k string) string {
			if v, ok := d.args[k]; ok {
				return v
			}
			return "${" + k + "}"
		})
	}
	for _, l := range lines {
		instr, rest, _ := strings.Cut(strings.TrimSpace(l), " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			f := strings.Fields(rest)
			name := f[0]
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				name = f[2]
			}
			d.stages = append(d.stages, name)
			d.copies, d.env = nil, map[string]string{} // only the last stage's count
		case "ARG":
			k, v, _ := strings.Cut(rest, "=")
			d.args[k] = v
		case "RUN":
			for _, words := range shellCommands(rest) {
				for i := range words {
					words[i] = expand(words[i])
				}
				if slices.Contains(words, "go") && slices.Contains(words, "build") {
					d.builds = append(d.builds, words)
				}
			}
		case "COPY":
			c := dockerCopy{}
			var words []string
			for _, w := range shellCommands(rest)[0] {
				switch {
				case strings.HasPrefix(w, "--from="):
					c.from = strings.TrimPrefix(w, "--from=")
				case strings.HasPrefix(w, "--chown="):
					c.chown = strings.TrimPrefix(w, "--chown=")
				default:
					words = append(words, w)
				}
			}
			c.srcs, c.dest = words[:len(words)-1], words[len(words)-1]
			d.copies = append(d.copies, c)
		case "ENV":
			for _, w := range shellCommands(rest)[0] {
				k, v, ok := strings.Cut(w, "=")
				if !ok {
					t.Fatalf("Dockerfile: ENV %s: use the KEY=VALUE form", rest)
				}
				d.env[k] = v
			}
		case "ENTRYPOINT":
			d.entrypoint = jsonArray(instr, rest)
		case "CMD":
			d.cmd = jsonArray(instr, rest)
		case "HEALTHCHECK":
			i := strings.Index(rest, "CMD ")
			if i < 0 {
				t.Fatalf("Dockerfile: HEALTHCHECK %s: no CMD", rest)
			}
			d.healthcheck = jsonArray(instr, rest[i+4:])
		case "USER":
			d.user = rest
		case "EXPOSE":
			d.expose = append(d.expose, strings.Fields(rest)...)
		}
	}
	if len(d.stages) < 2 {
		t.Fatalf("Dockerfile: want a multi-stage build, got stages %v", d.stages)
	}
	return d
}

func depDockerfile(t *testing.T) *dockerfile {
	t.Helper()
	return parseDockerfile(t, depRead(t, "container/Dockerfile"))
}

var depStatic struct {
	once  sync.Once
	built map[string]string // /out/... in the build stage -> host path
	err   error
}

// depStaticBuild runs the Dockerfile's go build commands as written (same
// environment assignments and flags), with the -o paths moved into a host
// directory, and returns the build stage's output paths mapped to the host.
// A command that builds ./cmd/example is left out while that does not exist.
func depStaticBuild(t *testing.T, d *dockerfile) map[string]string {
	t.Helper()
	repo, haveExample := depRepo(t), depExampleExists(t)
	depStatic.once.Do(func() {
		depStatic.built = map[string]string{}
		dir, err := depBinDir()
		if err != nil {
			depStatic.err = err
			return
		}
		dir = filepath.Join(dir, "static")
		if depStatic.err = os.MkdirAll(dir, 0o755); depStatic.err != nil {
			return
		}
		for _, words := range d.builds {
			if depStatic.err = depGoBuild(repo, dir, words, haveExample, depStatic.built); depStatic.err != nil {
				return
			}
		}
	})
	if depStatic.err != nil {
		t.Fatal(depStatic.err)
	}
	return depStatic.built
}

func depGoBuild(repo, dir string, words []string, haveExample bool, built map[string]string) error {
	var env []string
	i := 0
	for ; i < len(words) && strings.Contains(words[i], "=") && !strings.HasPrefix(words[i], "-"); i++ {
		env = append(env, words[i])
	}
	args := slices.Clone(words[i:])
	if len(args) < 2 || args[0] != "go" || args[1] != "build" {
		return fmt.Errorf("Dockerfile: RUN %q: want [VAR=value...] go build ...", words)
	}
	if !slices.Contains(env, "CGO_ENABLED=0") || !slices.Contains(args, "-trimpath") {
		return fmt.Errorf("Dockerfile: RUN %q: want CGO_ENABLED=0 and -trimpath (a static, reproducible binary)", words)
	}
	o := slices.Index(args, "-o")
	if o < 0 || o+1 >= len(args) {
		return fmt.Errorf("Dockerfile: RUN %q: no -o", words)
	}
	if pkg := args[len(args)-1]; pkg == "./cmd/example" && !haveExample {
		return nil
	}
	out := args[o+1]
	args[o+1] = filepath.Join(dir, filepath.Base(out))
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir, cmd.Env = repo, append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("Dockerfile's %q: %v\n%s", words, err, b)
	}
	built[out] = args[o+1]
	return nil
}

// depPathMap maps container (or host install) paths to host paths.
type depPathMap map[string]string

// apply maps one argument: a path equal to, or under, a mapped path, also
// as the value of a --flag=value.
func (m depPathMap) apply(s string) string {
	if k, v, ok := strings.Cut(s, "="); ok && strings.HasPrefix(k, "-") {
		return k + "=" + m.apply(v)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	for _, k := range keys {
		if s == k {
			return m[k]
		}
		if strings.HasPrefix(s, k+"/") {
			return m[k] + s[len(k):]
		}
	}
	return s
}

func (m depPathMap) argv(a []string) []string {
	out := make([]string, len(a))
	for i, s := range a {
		out[i] = m.apply(s)
	}
	return out
}

// depContainer maps the final image's files to the host: the statically
// built binaries, the COPYed context files, and a fresh directory for each
// directory the build stage made (the lock directory).
func depContainer(t *testing.T, d *dockerfile) depPathMap {
	t.Helper()
	built := depStaticBuild(t, d)
	m := depPathMap{}
	for _, c := range d.copies {
		for _, src := range c.srcs {
			dest := c.dest
			if strings.HasSuffix(dest, "/") {
				dest += filepath.Base(src)
			}
			switch {
			case c.from == "":
				m[dest] = filepath.Join(depRepo(t), src)
			case built[src] != "":
				m[dest] = built[src]
			case strings.HasSuffix(src, "example") && !depExampleExists(t):
				// not built yet; example checks skip
			default:
				dir := filepath.Join(t.TempDir(), filepath.Base(dest))
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				m[dest] = dir
			}
		}
	}
	return m
}

// --- guard command lines in deploy/ ---------------------------------------

type depGuardLine struct {
	src  string   // file and place
	args []string // after "guard"
}

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

var depCronTime = regexp.MustCompile(`^[0-9*/,-]+$`)

// depCronJobs returns the command of each job line of a system crontab.
func depCronJobs(t *testing.T, text string) []string {
	t.Helper()
	var jobs []string
	for n, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`).MatchString(l) {
			continue
		}
		f := strings.Fields(l)
		if len(f) < 7 {
			t.Fatalf("cron line %d: want 5 time fields, a user and a command: %q", n+1, l)
		}
		for _, tf := range f[:5] {
			if !depCronTime.MatchString(tf) {
				t.Fatalf("cron line %d: bad time field %q", n+1, tf)
			}
		}
		if strings.Contains(l, "%") {
			t.Fatalf("cron line %d: an unescaped %% is a newline to cron: %q", n+1, l)
		}
		// The command is the rest of the line after the sixth field.
		rest := l
		for range 6 {
			rest = strings.TrimLeft(rest, " \t")
			rest = rest[strings.IndexAny(rest, " \t"):]
		}
		jobs = append(jobs, strings.TrimSpace(rest))
	}
	return jobs
}

// depK8sContainers returns the containers of each workload in the docs.
func depK8sContainers(docs []any) (out []depK8sContainer) {
	for _, doc := range docs {
		var spec any
		switch depGet(doc, "kind") {
		case "Deployment", "StatefulSet", "DaemonSet", "Job":
			spec = depGet(doc, "spec", "template", "spec")
		case "CronJob":
			spec = depGet(doc, "spec", "jobTemplate", "spec", "template", "spec")
		default:
			continue
		}
		cs, _ := depGet(spec, "containers").([]any)
		for _, c := range cs {
			out = append(out, depK8sContainer{doc: doc, c: c})
		}
	}
	return out
}

type depK8sContainer struct{ doc, c any }

// argv is the container's command line: command, else the image's
// ENTRYPOINT (the Dockerfile's, for the image built from it); args, else
// the image's CMD.
func (k depK8sContainer) argv(d *dockerfile) []string {
	strs := func(v any) []string {
		var s []string
		for _, x := range depList(v) {
			s = append(s, fmt.Sprint(x))
		}
		return s
	}
	cmd, args := strs(depGet(k.c, "command")), strs(depGet(k.c, "args"))
	ours := strings.HasPrefix(fmt.Sprint(depGet(k.c, "image")), "guard-example")
	if cmd == nil && ours {
		cmd = d.entrypoint
		if depGet(k.c, "args") == nil {
			args = d.cmd
		}
	}
	return append(slices.Clone(cmd), args...)
}

// commands are the simple commands the container runs: a "sh -c SCRIPT"
// is split into the script's commands.
func (k depK8sContainer) commands(d *dockerfile) [][]string {
	argv := k.argv(d)
	if len(argv) >= 3 && filepath.Base(argv[0]) == "sh" && argv[1] == "-c" {
		return shellCommands(argv[2])
	}
	return [][]string{argv}
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

// --- systemd --------------------------------------------------------------

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
	sa := requirePeer(t, "systemd-analyze", "systemd")
	dir, unmapped := depUnitFiles(t)
	units, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(units) < 4 {
		t.Fatalf("want example.service, backup.service, backup.timer and legacy-forking.service, got %v", units)
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

// The units agree with the guard command lines they run: systemd's limits
// leave guard's --timeout room to act, the PID file is the one guard
// writes, TERM goes to guard alone, and the lock directory exists.
func TestDeploySystemdConsistent(t *testing.T) {
	for _, name := range []string{"backup.service", "legacy-forking.service", "example.service"} {
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
		})
	}
	if tm := depUnit(t, "backup.timer"); tm["Unit"] != "backup.service" || tm["OnCalendar"] == "" {
		t.Errorf("backup.timer: want OnCalendar= and Unit=backup.service, got %v", tm)
	}
}

// --- the example daemon, run as the deploy files run it --------------------

func depFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// depListen replaces the value of --listen in argv with a free loopback
// port, returning the new argv, the port written in the file and the
// address to use.
func depListen(t *testing.T, argv []string) ([]string, string, string) {
	t.Helper()
	argv = slices.Clone(argv)
	i := slices.Index(argv, "--listen")
	if i < 0 || i+1 >= len(argv) {
		t.Fatalf("%q: no --listen", argv)
	}
	_, port, err := net.SplitHostPort(argv[i+1])
	if err != nil {
		t.Fatalf("--listen %q: %v", argv[i+1], err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", depFreePort(t))
	argv[i+1] = addr
	return argv, port, addr
}

var depHTTP = &http.Client{Timeout: 3 * time.Second}

func depGet200(url string) bool {
	resp, err := depHTTP.Get(url)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func depStart(t *testing.T, env []string, argv ...string) *proc {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	return p
}

// depServes waits until addr answers 200 on /readyz, then checks the other
// endpoints the deploy files use.
func depServes(t *testing.T, p *proc, addr string) {
	t.Helper()
	eventually(t, "/readyz 200 on "+addr, func() bool {
		if p.exited() {
			t.Fatalf("%v exited %d before it was ready:\n%s", p.cmd.Args, p.cmd.ProcessState.ExitCode(), p.stderr.String())
		}
		return depGet200("http://" + addr + "/readyz")
	})
	for _, path := range []string{"/livez", "/healthz", "/metrics"} {
		if !depGet200("http://" + addr + path) {
			t.Errorf("%s: not 200", path)
		}
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

// --- container --------------------------------------------------------------

// The Dockerfile's build makes static binaries: no dynamic loader, no
// shared libraries, and they run.
func TestDeployContainerStaticBuild(t *testing.T) {
	d := depDockerfile(t)
	built := depStaticBuild(t, d)
	if len(built) == 0 {
		t.Fatal("the Dockerfile builds nothing")
	}
	for out, bin := range built {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s: has PT_INTERP (dynamically linked)", out)
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("%s: needs shared libraries %v", out, libs)
		}
		f.Close()
	}
	bin := built["/out/guard"]
	if bin == "" {
		t.Fatalf("the Dockerfile does not build /out/guard: %v", built)
	}
	if r := run(t, bin, "version"); r.code != 0 || r.stdout == "" {
		t.Errorf("static guard version: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	if file, err := exec.LookPath("file"); err == nil {
		out, _ := exec.Command(file, bin).Output()
		if !regexp.MustCompile(`statically linked|static-pie linked`).Match(out) {
			t.Errorf("file(1) does not call it static: %s", out)
		}
	}
	if !depExampleExists(t) {
		t.Log("cmd/example does not exist yet: only guard built")
	}
}

// The final image as the Dockerfile describes it: non-root, the lock
// directory in GUARD_DIR made by the build and owned by that user, guard
// as the ENTRYPOINT, exec forms throughout.
func TestDeployContainerImage(t *testing.T) {
	d := depDockerfile(t)
	if d.user == "" || strings.HasPrefix(d.user, "0") || strings.HasPrefix(d.user, "root") {
		t.Errorf("USER %q: want a non-root user", d.user)
	}
	gd := d.env["GUARD_DIR"]
	if gd == "" {
		t.Fatal("no ENV GUARD_DIR: guard as a non-root user has no default lock directory")
	}
	owned := false
	for _, c := range d.copies {
		owned = owned || (c.dest == gd && c.chown != "" && strings.HasPrefix(d.user, strings.Split(c.chown, ":")[0]))
	}
	if !owned {
		t.Errorf("GUARD_DIR %s is not COPYed --chown to USER %s: the user could not create lock files there", gd, d.user)
	}
	if filepath.Base(d.entrypoint[0]) != "guard" || d.entrypoint[1] != "run" || d.entrypoint[len(d.entrypoint)-1] != "--" {
		t.Errorf("ENTRYPOINT %q: want guard run ... --", d.entrypoint)
	}
	if filepath.Base(d.healthcheck[0]) != "guard" || d.healthcheck[1] != "status" {
		t.Errorf("HEALTHCHECK %q: want guard status", d.healthcheck)
	}
	_, port, err := net.SplitHostPort(depFlag(d.cmd, "--listen"))
	if err != nil || !slices.Contains(d.expose, port) {
		t.Errorf("CMD --listen port %q (%v) is not EXPOSEd (%v)", port, err, d.expose)
	}
	ignore := depRead(t, "container/Dockerfile.dockerignore")
	for _, c := range d.copies {
		for _, src := range c.srcs {
			if c.from == "" && !strings.Contains(ignore, "!"+src) {
				t.Errorf("COPY %s: not let through by Dockerfile.dockerignore", src)
			}
		}
	}
}

// depNsInit returns the host PID of unshare's child: the namespace's PID 1.
func depNsInit(t *testing.T, p *proc) int {
	t.Helper()
	pid := p.cmd.Process.Pid
	var child int
	eventually(t, "the namespace's init", func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
			child, _ = strconv.Atoi(f[0])
		}
		return child > 0
	})
	return child
}

// The container's ENTRYPOINT+CMD as PID 1 of a PID namespace (what a
// container runtime does): the example becomes ready, guard is PID 1, the
// HEALTHCHECK passes inside the container, SIGTERM to PID 1 stops it all
// with 0, and the HEALTHCHECK fails once it has stopped (and before).
func TestDeployContainerRunsAsPID1(t *testing.T) {
	unshare := requirePeer(t, "unshare", "util-linux")
	nsenter := requirePeer(t, "nsenter", "util-linux")
	if os.Geteuid() != 0 {
		t.Skip("unshare --pid needs root")
	}
	d := depDockerfile(t)
	depExampleBin(t) // skips while cmd/example does not exist
	m := depContainer(t, d)
	argv, _, addr := depListen(t, m.argv(append(slices.Clone(d.entrypoint), d.cmd...)))
	var env []string
	for k, v := range d.env {
		env = append(env, k+"="+m.apply(v))
	}
	health := m.argv(d.healthcheck)
	healthcheck := func(inside int) result {
		t.Helper()
		a := health
		if inside > 0 { // as docker runs it: in the container's namespaces
			a = append([]string{nsenter, "--target", strconv.Itoa(inside), "--pid", "--mount", "--"}, health...)
		}
		cmd := exec.Command(a[0], a[1:]...)
		cmd.Env = append(os.Environ(), env...)
		out, _ := cmd.CombinedOutput()
		return result{code: cmd.ProcessState.ExitCode(), stdout: string(out)}
	}
	if r := healthcheck(0); r.code == 0 {
		t.Errorf("HEALTHCHECK before the start: exit 0, want non-zero")
	}

	p := depStart(t, env, append([]string{unshare, "--pid", "--fork", "--mount-proc", "--kill-child", "--"}, argv...)...)
	init := depNsInit(t, p)
	depServes(t, p, addr)
	if r := healthcheck(init); r.code != 0 {
		t.Errorf("HEALTHCHECK %q in the container: exit %d, want 0: %s", d.healthcheck, r.code, r.stdout)
	}
	// guard holds its own lock as PID 1 of the namespace (lock_pid: the
	// locker the kernel lists in /proc/locks).
	st := exec.Command(nsenter, "--target", strconv.Itoa(init), "--pid", "--mount", "--", m.apply(d.entrypoint[0]), "status", "--json", "--name", depFlag(d.entrypoint, "--name"))
	st.Env = append(os.Environ(), env...)
	out, _ := st.Output()
	var rec struct {
		Held    bool `json:"held"`
		LockPID int  `json:"lock_pid"`
	}
	if err := json.Unmarshal(out, &rec); err != nil || !rec.Held || rec.LockPID != 1 {
		t.Errorf("guard status --json in the container: %v %s: want the lock held by PID 1", err, out)
	}

	syscall.Kill(init, syscall.SIGTERM) // docker stop
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM to PID 1, want 0 (the example's own):\n%s", code, p.stderr.String())
	}
	if r := healthcheck(0); r.code == 0 {
		t.Errorf("HEALTHCHECK after the stop: exit 0, want non-zero: %s", r.stdout)
	}
}

// --- Kubernetes -------------------------------------------------------------

var depPython = sync.OnceValue(func() string {
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import yaml").Run() == nil {
			return py
		}
	}
	return ""
})

// depYAML parses a YAML file (all its documents) with PyYAML's safe loader.
func depYAML(t *testing.T, path string) []any {
	t.Helper()
	py := depPython()
	if py == "" {
		requirePeer(t, "python3", "python3-yaml")
		msg := "python3 cannot import yaml (install the Debian package python3-yaml)"
		if os.Getenv("GUARD_REQUIRE_PEERS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	out, err := exec.Command(py, "-c", `import json, sys, yaml
json.dump([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None], sys.stdout)`, path).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: not valid YAML: %v\n%s", path, err, out)
	}
	var docs []any
	if err := json.Unmarshal(out, &docs); err != nil {
		t.Fatal(err)
	}
	return docs
}

// depGet walks maps by key and lists by index; nil when absent.
func depGet(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func depList(v any) []any { l, _ := v.([]any); return l }

func depStr(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// depPort resolves a probe's or Service's port (a number or a port name).
func depPort(c any, port any) string {
	if s, ok := port.(string); ok {
		for _, p := range depList(depGet(c, "ports")) {
			if depGet(p, "name") == s {
				return depStr(depGet(p, "containerPort"))
			}
		}
		return "name " + s + " not found"
	}
	return depStr(port)
}

func depSubset(sub, super any) bool {
	sm, _ := sub.(map[string]any)
	m, _ := super.(map[string]any)
	for k, v := range sm {
		if m[k] != v {
			return false
		}
	}
	return len(sm) > 0
}

var depEndpoints = []string{"/livez", "/readyz", "/healthz", "/metrics"}

// The manifests are valid YAML with the fields every object needs, the
// probes and the Service point at paths and the port the example serves
// (its --listen in the container's args), and the CronJob leaves guard's
// --timeout room to act.
func TestDeployKubernetes(t *testing.T) {
	d := depDockerfile(t)
	files, _ := filepath.Glob(depFile(t, "kubernetes/*.yaml"))
	var docs []any
	for _, f := range files {
		docs = append(docs, depYAML(t, f)...)
	}
	kinds := map[string]any{}
	for _, doc := range docs {
		kind := depStr(depGet(doc, "kind"))
		if depGet(doc, "apiVersion") == nil || kind == "" || depStr(depGet(doc, "metadata", "name")) == "" {
			t.Errorf("object without apiVersion, kind or metadata.name: %v", doc)
		}
		kinds[kind] = doc
	}
	for _, k := range []string{"Deployment", "Service", "CronJob", "ConfigMap"} {
		if kinds[k] == nil {
			t.Fatalf("no %s in deploy/kubernetes", k)
		}
	}

	dep := kinds["Deployment"]
	podLabels := depGet(dep, "spec", "template", "metadata", "labels")
	if !depSubset(depGet(dep, "spec", "selector", "matchLabels"), podLabels) {
		t.Errorf("Deployment selector does not match its pod labels")
	}
	c := depGet(dep, "spec", "template", "spec", "containers", 0)
	argv := depK8sContainer{dep, c}.argv(d)
	if guardArgs(argv) == nil {
		t.Errorf("Deployment container %q does not run under guard", argv)
	}
	_, port, err := net.SplitHostPort(depFlag(argv[slices.Index(argv, "--")+1:], "--listen"))
	if err != nil {
		t.Fatalf("Deployment args %q: no --listen host:port: %v", argv, err)
	}
	for probe, want := range map[string]string{"livenessProbe": "/livez", "readinessProbe": "/readyz", "startupProbe": ""} {
		pr := depGet(c, probe)
		if pr == nil {
			if want != "" {
				t.Errorf("no %s", probe)
			}
			continue
		}
		path := depStr(depGet(pr, "httpGet", "path"))
		if !slices.Contains(depEndpoints, path) || (want != "" && path != want) {
			t.Errorf("%s path %q: want %s (the example serves %v)", probe, path, want, depEndpoints)
		}
		if p := depPort(c, depGet(pr, "httpGet", "port")); p != port {
			t.Errorf("%s port %s, but the example listens on %s", probe, p, port)
		}
	}

	svc := kinds["Service"]
	if !depSubset(depGet(svc, "spec", "selector"), podLabels) {
		t.Errorf("Service selector does not select the Deployment's pods")
	}
	sp := depGet(svc, "spec", "ports", 0)
	if p := depPort(c, depGet(sp, "targetPort")); p != port {
		t.Errorf("Service targetPort is port %s, but the example listens on %s", p, port)
	}
	ann := depGet(svc, "metadata", "annotations")
	if depStr(depGet(ann, "prometheus.io/port")) != port || depStr(depGet(ann, "prometheus.io/path")) != "/metrics" || depGet(ann, "prometheus.io/scrape") != "true" {
		t.Errorf("Service prometheus.io annotations %v: want scrape \"true\", port %s, path /metrics", ann, port)
	}
	// The config the example reads comes from the ConfigMap.
	cm := kinds["ConfigMap"]
	conf := depFlag(argv[slices.Index(argv, "--")+1:], "--config")
	if depGet(cm, "data", filepath.Base(conf)) == nil {
		t.Errorf("ConfigMap has no %s for --config %s", filepath.Base(conf), conf)
	}

	cj := kinds["CronJob"]
	if depGet(cj, "spec", "concurrencyPolicy") != "Forbid" {
		t.Errorf("CronJob concurrencyPolicy %v: want Forbid", depGet(cj, "spec", "concurrencyPolicy"))
	}
	var gl []string
	for _, k := range depK8sContainers([]any{cj}) {
		for _, words := range k.commands(d) {
			if a := guardArgs(words); a != nil {
				gl = a
			}
		}
	}
	timeout, err1 := time.ParseDuration(depFlag(gl, "--timeout"))
	killAfter, err2 := time.ParseDuration(depFlag(gl, "--kill-after"))
	if err1 != nil || err2 != nil {
		t.Fatalf("CronJob guard line %q: want --timeout and --kill-after", gl)
	}
	deadline, _ := depGet(cj, "spec", "jobTemplate", "spec", "activeDeadlineSeconds").(float64)
	if time.Duration(deadline)*time.Second <= timeout+killAfter {
		t.Errorf("activeDeadlineSeconds %v: want more than guard's --timeout %s + --kill-after %s, so guard records the timeout", deadline, timeout, killAfter)
	}
}

// The Deployment's container command line runs: the ConfigMap's
// configuration, the lock, the port, all as the manifest says.
func TestDeployKubernetesExampleRuns(t *testing.T) {
	example := depExampleBin(t)
	d := depDockerfile(t)
	var dep any
	confDir := t.TempDir() // the ConfigMap, mounted
	for _, doc := range depYAML(t, depFile(t, "kubernetes/example.yaml")) {
		switch depGet(doc, "kind") {
		case "Deployment":
			dep = doc
		case "ConfigMap":
			data, _ := depGet(doc, "data").(map[string]any)
			for k, v := range data {
				if err := os.WriteFile(filepath.Join(confDir, k), []byte(depStr(v)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	c := depGet(dep, "spec", "template", "spec", "containers", 0)
	m := depPathMap{
		"/usr/local/bin/guard":   guardBin,
		"/usr/local/bin/example": example,
		"/etc/example":           confDir,
		d.env["GUARD_DIR"]:       t.TempDir(),
	}
	argv, _, addr := depListen(t, m.argv(depK8sContainer{dep, c}.argv(d)))
	p := depStart(t, []string{"GUARD_DIR=" + m.apply(d.env["GUARD_DIR"])}, argv...)
	depServes(t, p, addr)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0:\n%s", code, p.stderr.String())
	}
}

// The CronJob's script, run by sh as the pod would: the job's exit code
// comes out, the textfile is pushed to the Pushgateway (a fake one here),
// and a SIGTERM to sh (the pod's PID 1) reaches the job through guard.
func TestDeployKubernetesCronJobScript(t *testing.T) {
	requirePeer(t, "wget", "wget")
	sh := requirePeer(t, "sh", "dash")
	d := depDockerfile(t)
	var k depK8sContainer
	for _, doc := range depYAML(t, depFile(t, "kubernetes/backup-cronjob.yaml")) {
		if cs := depK8sContainers([]any{doc}); len(cs) > 0 {
			k = cs[0]
		}
	}
	argv := k.argv(d)
	if len(argv) != 3 || argv[1] != "-c" {
		t.Fatalf("CronJob command %q: want sh -c SCRIPT", argv)
	}
	mount := depStr(depGet(k.c, "volumeMounts", 0, "mountPath"))
	jobPath := "" // the job guard runs: the last word of the guard line
	for _, words := range shellCommands(argv[2]) {
		if a := guardArgs(words); a != nil {
			jobPath = a[len(a)-1]
		}
	}
	if jobPath == "" || mount == "" {
		t.Fatalf("CronJob script: no guard line or no volume mount:\n%s", argv[2])
	}

	type push struct{ method, path, body string }
	pushes := make(chan push, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		pushes <- push{r.Method, r.URL.Path, string(b)}
	}))
	defer srv.Close()

	for _, tc := range []struct {
		name     string
		term     bool
		wantCode int
		wantLine string
	}{
		{"job exits 3", false, 3, `guard_job_last_exit_code{name="backup"} 3`},
		{"SIGTERM to sh", true, 143, `guard_job_runs_total{name="backup",result="success"} 0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			metrics, marker := filepath.Join(dir, "metrics"), filepath.Join(dir, "started")
			os.Mkdir(metrics, 0o777)
			jobScript := filepath.Join(dir, "backup.sh")
			os.WriteFile(jobScript, []byte("#!/bin/sh\ntouch "+marker+"\n[ -n \"$SLEEP\" ] && exec sleep 60\nexit 3\n"), 0o755)
			script := strings.ReplaceAll(argv[2], "/usr/local/bin/guard", guardBin)
			script = strings.ReplaceAll(script, jobPath, jobScript)
			script = regexp.MustCompile(`(^|[\s=])`+regexp.QuoteMeta(mount)+`\b`).ReplaceAllString(script, "${1}"+metrics)
			env := []string{"PUSHGATEWAY_URL=" + srv.URL, "GUARD_DIR=" + filepath.Join(dir, "guard")}
			if tc.term {
				env = append(env, "SLEEP=1")
			}
			p := depStart(t, env, sh, "-c", script)
			if tc.term {
				eventually(t, "the job started", func() bool { _, err := os.Stat(marker); return err == nil })
				p.cmd.Process.Signal(syscall.SIGTERM)
			}
			if code := p.wait(t); code != tc.wantCode {
				t.Errorf("exit %d, want %d:\n%s", code, tc.wantCode, p.stderr.String())
			}
			select {
			case got := <-pushes:
				if got.method != http.MethodPost || !strings.HasPrefix(got.path, "/metrics/job/") || !strings.Contains(got.body, tc.wantLine) {
					t.Errorf("push %s %s:\n%s\nwant a POST to /metrics/job/... with %s", got.method, got.path, got.body, tc.wantLine)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("nothing pushed:\n%s", p.stderr.String())
			}
		})
	}
}

// --- cron -------------------------------------------------------------------

// The crontab's lines do what their comments say when the lock is busy:
// exit 75, silent with --quiet, and counted in the textfile.
func TestDeployCronBusy(t *testing.T) {
	jobs := depCronJobs(t, depRead(t, "cron/guard.cron"))
	if !strings.HasSuffix(depRead(t, "cron/guard.cron"), "\n") {
		t.Error("guard.cron does not end in a newline: cron ignores an unterminated last line")
	}
	for i, job := range jobs {
		args := guardArgs(shellCommands(job)[0])
		if args == nil || args[0] != "run" || depFlag(args, "--wait") != "" {
			continue // waiting minutes for a lock is not for a test
		}
		t.Run(fmt.Sprint("job", i+1), func(t *testing.T) {
			dir := t.TempDir()
			textfiles := filepath.Join(dir, "textfile")
			os.Mkdir(textfiles, 0o755)
			m := depPathMap{"/var/lib/prometheus/node-exporter": textfiles}
			args := m.argv(args)
			dd := slices.Index(args, "--")
			args = append(args[:dd+1], "true")
			env := []string{"GUARD_DIR=" + dir}
			holder := depStart(t, env, guardBin, "run", "--name", depFlag(args, "--name"), "--", "sleep", "1000")
			eventually(t, "the holder", func() bool {
				b, _ := os.ReadFile(filepath.Join(dir, depFlag(args, "--name")+".lock"))
				return bytes.Contains(b, []byte("token="))
			})
			cmd := exec.Command(guardBin, args...)
			cmd.Env = append(os.Environ(), env...)
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != 75 {
				t.Errorf("guard %s with the lock busy: exit %d, want 75: %s", strings.Join(args, " "), code, out)
			}
			if slices.Contains(args, "--quiet") != (len(out) == 0) {
				t.Errorf("--quiet %v, output %q: cron would mail that", slices.Contains(args, "--quiet"), out)
			}
			if tf := depFlag(args, "--textfile-dir"); tf != "" {
				b, _ := os.ReadFile(filepath.Join(tf, depFlag(args, "--name")+".prom"))
				if !strings.Contains(string(b), `result="skipped"} 1`) {
					t.Errorf("textfile after a skipped run:\n%s", b)
				}
			}
			holder.cmd.Process.Kill()
		})
	}
}

// node_exporter reads what the crontab's textfile line writes, and the
// alert rules' label_replace turns its file label into the job's name.
func TestDeployCronTextfileNodeExporter(t *testing.T) {
	ne := requirePeer(t, "prometheus-node-exporter", "prometheus-node-exporter")
	var args []string
	for _, job := range depCronJobs(t, depRead(t, "cron/guard.cron")) {
		if a := guardArgs(shellCommands(job)[0]); depFlag(a, "--textfile-dir") != "" {
			args = a
		}
	}
	if args == nil {
		t.Fatal("no cron line with --textfile-dir")
	}
	dir := t.TempDir()
	textfiles := filepath.Join(dir, "textfile")
	os.Mkdir(textfiles, 0o755)
	args = depPathMap{depFlag(args, "--textfile-dir"): textfiles}.argv(args)
	args = append(args[:slices.Index(args, "--")+1], "true")
	cmd := exec.Command(guardBin, args...)
	cmd.Env = append(os.Environ(), "GUARD_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("guard %s: %v %s", strings.Join(args, " "), err, out)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", depFreePort(t))
	p := depStart(t, nil, ne, "--collector.disable-defaults", "--collector.textfile",
		"--collector.textfile.directory="+textfiles, "--web.listen-address="+addr)
	var body string
	eventually(t, "node_exporter metrics", func() bool {
		if p.exited() {
			t.Fatalf("node_exporter exited: %s", p.stderr.String())
		}
		resp, err := depHTTP.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == 200
	})
	name := depFlag(args, "--name")
	if !strings.Contains(body, fmt.Sprintf(`guard_job_runs_total{name=%q,result="success"} 1`, name)) {
		t.Errorf("node_exporter does not show the run:\n%s", body)
	}
	// The regular expression of GuardTextfileStale in rules.yml.
	re := regexp.MustCompile(`label_replace\(node_textfile_mtime_seconds\{file=~"(.*?)"\}, "name", "\$1", "file", "(.*?)"\)`)
	mm := re.FindStringSubmatch(depRead(t, "prometheus/rules.yml"))
	if mm == nil {
		t.Fatal("rules.yml: no label_replace of node_textfile_mtime_seconds")
	}
	unq := func(s string) string { return strings.ReplaceAll(s, `\\`, `\`) }
	fileRE := regexp.MustCompile("^(?:" + unq(mm[2]) + ")$")
	found := false
	for _, l := range strings.Split(body, "\n") {
		if f, ok := strings.CutPrefix(l, `node_textfile_mtime_seconds{file="`); ok {
			f = f[:strings.IndexByte(f, '"')]
			if sm := fileRE.FindStringSubmatch(f); sm != nil && sm[1] == name && regexp.MustCompile("^(?:"+unq(mm[1])+")$").MatchString(f) {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("no node_textfile_mtime_seconds whose file label maps to name %q with %q:\n%s", name, unq(mm[2]), body)
	}
}

// --- Prometheus -------------------------------------------------------------

func depPromtool(t *testing.T, args ...string) {
	t.Helper()
	promtool := requirePeer(t, "promtool", "prometheus")
	cmd := exec.Command(promtool, args...)
	cmd.Dir = depFile(t, "prometheus")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestDeployPrometheus(t *testing.T) {
	depPromtool(t, "check", "config", "prometheus.yml")
	depPromtool(t, "check", "rules", "rules.yml")
	depPromtool(t, "test", "rules", "rules_test.yml")
}

// Every alert in rules.yml has a unit test that expects it to fire and one
// that expects it not to.
func TestDeployPrometheusEveryAlertTested(t *testing.T) {
	rules := depYAML(t, depFile(t, "prometheus/rules.yml"))
	tests := depYAML(t, depFile(t, "prometheus/rules_test.yml"))
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range depList(depGet(tests[0], "tests")) {
		for _, at := range depList(depGet(tc, "alert_rule_test")) {
			name := depStr(depGet(at, "alertname"))
			if len(depList(depGet(at, "exp_alerts"))) > 0 {
				fires[name] = true
			} else {
				silent[name] = true
			}
		}
	}
	n := 0
	for _, g := range depList(depGet(rules[0], "groups")) {
		for _, r := range depList(depGet(g, "rules")) {
			a := depStr(depGet(r, "alert"))
			if a == "" {
				continue
			}
			n++
			if !fires[a] || !silent[a] {
				t.Errorf("alert %s: tested firing %v, not firing %v; want both", a, fires[a], silent[a])
			}
		}
	}
	if n < 6 {
		t.Errorf("%d alerts in rules.yml, want at least 6", n)
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
		if !strings.Contains(string(b), "deploy_test.go") {
			t.Errorf("deploy/%s/README.md does not say how it is checked (tests/deploy_test.go)", dir)
		}
	}
}
