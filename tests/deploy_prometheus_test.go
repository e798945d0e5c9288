package tests

// deploy/prometheus: promtool checks the files, and every alert is tested.

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/guardkit/guard/internal/guardtest"
)

func depPromtool(t *testing.T, args ...string) {
	t.Helper()
	promtool := guardtest.RequirePeer(t, "promtool", "prometheus")
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
