package tests

// deploy/container/Dockerfile as the tests read it, and its go build
// commands run as written.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

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

// depBinDir is where the static binaries go: next to the guard binary
// TestMain built (and removes), or a directory of its own.
var depBinDir = sync.OnceValues(func() (string, error) {
	if os.Getenv("GUARD_TEST_BIN") != "" {
		return os.MkdirTemp("", "guard-deploy-")
	}
	return filepath.Dir(guardBin), nil
})

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
