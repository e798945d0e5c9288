package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A command line whose lock is in etcd is handed to guard-etcd, found beside
// guard, with the same arguments; without guard-etcd it is one line and
// exit 69 (unavailable), and nothing runs.
func TestEtcdHandOver(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "guard")
	b, err := os.ReadFile(guardBin)
	if err != nil || os.WriteFile(bin, b, 0o755) != nil {
		t.Fatalf("copy guard: %v", err)
	}
	ran := filepath.Join(dir, "ran")
	r := run(t, bin, "run", "--etcd", "http://127.0.0.1:1", "--name", "x", "--", "touch", ran)
	if r.code != 69 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "guard-etcd") {
		t.Fatalf("without guard-etcd: exit %d %q, want 69 and one line naming guard-etcd", r.code, r.stderr)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Fatal("the job ran without its etcd lock")
	}
	args := filepath.Join(dir, "args")
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + args + "\nexit 5\n"
	if err := os.WriteFile(filepath.Join(dir, "guard-etcd"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		env  string
	}{
		{args: []string{"run", "--etcd=http://127.0.0.1:1", "--name", "x", "--", "true"}},
		{args: []string{"status", "--name", "x"}, env: "GUARD_ETCD_ENDPOINTS=http://127.0.0.1:1"},
	} {
		cmd := exec.Command(bin, tc.args...)
		if tc.env != "" {
			cmd.Env = append(os.Environ(), tc.env)
		}
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 5 {
			t.Fatalf("%v: exit %d (%s), want guard-etcd's 5", tc.args, code, out)
		}
		got, _ := os.ReadFile(args)
		want := strings.Join(tc.args, "\n") + "\n"
		if string(got) != want {
			t.Fatalf("guard-etcd got %q, want %q", got, want)
		}
	}
	// An --etcd after "--" belongs to the job: no hand-over.
	if r := run(t, bin, "run", "--lock", filepath.Join(dir, "l.lock"), "--", "echo", "--etcd"); r.code != 0 || r.stdout != "--etcd\n" {
		t.Fatalf("--etcd in the job's arguments: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}
