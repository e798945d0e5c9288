package tests

// Hostile input: --push with a job name taken from an odd lock file name.

import (
	"path/filepath"
	"strings"
	"testing"
)

// Without --name the job's name is the lock file's base name, which may
// hold a tab or bytes that are not UTF-8 (a Latin-1 file name). The push
// still reaches the Pushgateway (it answered 400 to strconv.Quote's \t and
// \xff escapes, and the run's gauges were lost).
func TestPushOddLockNames(t *testing.T) {
	gw := startPushgateway(t)
	dir := lockDir(t)
	for _, base := range []string{"tab\there", "latin\xe9"} {
		lock := filepath.Join(dir, base+".lock")
		r := guard(t, "run", "--lock", lock, "--push", gw, "--", "true")
		if r.code != 0 || strings.Contains(r.stderr, "--push") {
			t.Errorf("lock %q: exit %d, stderr %q: the push failed", base, r.code, r.stderr)
		}
	}
	body := pushgatewayMetrics(t, gw)
	for _, want := range []string{"guard_job_running{instance=", `job="tab` + "\t" + `here"`, `job="latin` + "\uFFFD" + `"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the Pushgateway has no %q:\n%s", want, body)
		}
	}
}
