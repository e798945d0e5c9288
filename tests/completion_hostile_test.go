package tests

// Hostile input: guard's bash completion with file names users really have.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guardkit/guard/internal/guardtest"
)

// A file name with a space or a glob character completes as that one name:
// not split into words, not expanded against the current directory.
func TestBashCompletionHostileNames(t *testing.T) {
	bash := guardtest.RequirePeer(t, "bash", "bash")
	dir := t.TempDir()
	for _, name := range []string{"my job.lock", "star*.lock", "starry.lock", "other"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	comp := filepath.Join(t.TempDir(), "guard.bash")
	r := guard(t, "completion", "bash")
	if r.code != 0 {
		t.Fatalf("guard completion bash: %d %s", r.code, r.stderr)
	}
	if err := os.WriteFile(comp, []byte(r.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `cd "$1" && source "$2"
COMP_WORDS=(guard run --lock my); COMP_CWORD=3; _guard; printf '1:%s|' "${COMPREPLY[@]}"; echo
COMP_WORDS=(guard run --lock 'star*'); COMP_CWORD=3; _guard; printf '2:%s|' "${COMPREPLY[@]}"; echo`
	out := run(t, bash, "--norc", "--noprofile", "-c", script, "bash", dir, comp)
	want := "1:my job.lock|\n2:star*.lock|\n"
	if out.stdout != want {
		t.Fatalf("completions:\n%s\nwant:\n%s(stderr %q)", out.stdout, want, strings.TrimSpace(out.stderr))
	}
}
