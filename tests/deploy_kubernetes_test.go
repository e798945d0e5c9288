package tests

// deploy/kubernetes: the manifests consistent with the image and the
// example, and their command lines run.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guardkit/guard/internal/guardtest"
)

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
	out := append(slices.Clone(cmd), args...)
	for i, a := range out { // $(VAR) from the container's env, as the kubelet does
		out[i] = depK8sVar.ReplaceAllStringFunc(a, func(m string) string {
			if v, ok := k.env()[m[2:len(m)-1]]; ok {
				return v
			}
			return m
		})
	}
	return out
}

var depK8sVar = regexp.MustCompile(`\$\([A-Za-z_][A-Za-z0-9_]*\)`)

// env is the container's literal env values.
func (k depK8sContainer) env() map[string]string {
	m := map[string]string{}
	for _, e := range depList(depGet(k.c, "env")) {
		if v := depGet(e, "value"); v != nil {
			m[depStr(depGet(e, "name"))] = fmt.Sprint(v)
		}
	}
	return m
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

// The CronJob's command runs guard as the container's PID 1 would, with its
// env, against a real Pushgateway (Debian prometheus-pushgateway): the job's
// exit code comes out, the run is pushed under job=backup with the
// manifest's instance, a failure keeps the last success, and SIGTERM reaches
// the job through guard (exit 143).
func TestDeployKubernetesCronJobPush(t *testing.T) {
	d := depDockerfile(t)
	var k depK8sContainer
	for _, doc := range depYAML(t, depFile(t, "kubernetes/backup-cronjob.yaml")) {
		if cs := depK8sContainers([]any{doc}); len(cs) > 0 {
			k = cs[0]
		}
	}
	env := k.env()
	if env["PUSHGATEWAY_URL"] == "" || env["GUARD_PUSH_INSTANCE"] == "" {
		t.Fatalf("CronJob env %v: want PUSHGATEWAY_URL and GUARD_PUSH_INSTANCE", env)
	}
	gw := startPushgateway(t)
	env["PUSHGATEWAY_URL"] = gw
	k.c.(map[string]any)["env"] = nil // the test's values below
	for _, tc := range []struct {
		name     string
		job      string
		term     bool
		wantCode int
		want     []string
	}{
		{"success", "exit 0", false, 0, []string{`guard_job_last_exit_code{instance="backup",job="backup",name="backup"} 0`}},
		{"job exits 3", "exit 3", false, 3, []string{`guard_job_last_exit_code{instance="backup",job="backup",name="backup"} 3`}},
		{"SIGTERM to guard", "exec sleep 60", true, 143, []string{`guard_job_last_exit_code{instance="backup",job="backup",name="backup"} 143`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			marker := filepath.Join(dir, "started")
			jobScript := filepath.Join(dir, "backup.sh")
			os.WriteFile(jobScript, []byte("#!/bin/sh\ntouch "+marker+"\n"+tc.job+"\n"), 0o755)
			argv := k.argv(d)
			for i, a := range argv {
				a = strings.ReplaceAll(a, "$(PUSHGATEWAY_URL)", gw)
				argv[i] = strings.ReplaceAll(strings.ReplaceAll(a, "/usr/local/bin/guard", guardBin), "/usr/local/bin/backup.sh", jobScript)
			}
			p := depStart(t, []string{"GUARD_DIR=" + filepath.Join(dir, "guard"), "GUARD_PUSH_INSTANCE=" + env["GUARD_PUSH_INSTANCE"]}, argv...)
			if tc.term {
				guardtest.Eventually(t, "the job started", func() bool { _, err := os.Stat(marker); return err == nil })
				p.cmd.Process.Signal(syscall.SIGTERM)
			}
			if code := p.wait(t); code != tc.wantCode {
				t.Errorf("exit %d, want %d:\n%s", code, tc.wantCode, p.stderr.String())
			}
			body := pushgatewayMetrics(t, gw)
			for _, w := range append(tc.want, `guard_job_running{instance="backup",job="backup",name="backup"} 0`) {
				if !slices.Contains(strings.Split(body, "\n"), w) {
					t.Errorf("Pushgateway lacks %q:\n%s", w, body)
				}
			}
			// The first run's success stays through the failures.
			if !strings.Contains(body, `guard_job_last_success_timestamp_seconds{instance="backup",job="backup",name="backup"} 1.`) {
				t.Errorf("Pushgateway lost the last success:\n%s", body)
			}
		})
	}
}
