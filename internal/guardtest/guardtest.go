// Package guardtest holds the few helpers every test package of guard needs:
// waiting for a condition with a deadline, and real peers that are skipped
// when missing, except in CI (GUARD_REQUIRE_PEERS=1), where a missing peer
// fails the test so that CI never passes by skipping.
package guardtest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Patience bounds every wait: generous, because these machines are shared
// and slow at times; a test that reaches it fails instead of hanging.
const Patience = 30 * time.Second

// Eventually polls cond every 10ms until it holds, and fails the test if it
// does not within Patience.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", Patience, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Missing skips the test because of what is missing, or fails it when
// GUARD_REQUIRE_PEERS=1.
func Missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("GUARD_REQUIRE_PEERS") == "1" {
		t.Fatalf("%s (GUARD_REQUIRE_PEERS=1)", what)
	}
	t.Skip(what)
}

// RequirePeer returns the path of the program name, or skips (fails, in
// CI) the test, naming the Debian package pkg that provides it.
func RequirePeer(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, fmt.Sprintf("%s not found (install the Debian package %s)", name, pkg))
	}
	return p
}

// Imports returns the packages the package in the test's directory imports
// directly, its tests left out: what a dependency test checks.
func Imports(t testing.TB) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

// Forbid fails the test for each import of the package in the test's
// directory that bad says it must not have, with bad's reason.
func Forbid(t testing.TB, bad func(path string) (why string)) {
	t.Helper()
	for _, imp := range Imports(t) {
		if why := bad(imp); why != "" {
			t.Errorf("imports %s: %s", imp, why)
		}
	}
}

// ThirdParty reports whether an import path is outside the standard
// library and guard's own modules.
func ThirdParty(path string) bool {
	return strings.Contains(strings.SplitN(path, "/", 2)[0], ".") && !Own(path)
}

// Module is guard's module path; the etcd module is Module + "/etcd".
const Module = "github.com/guardkit/guard"

// Own reports whether an import path is one of guard's packages (either module).
func Own(path string) bool {
	return path == Module || strings.HasPrefix(path, Module+"/")
}
