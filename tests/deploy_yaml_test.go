package tests

// YAML (the Kubernetes manifests, the Prometheus rules) read with PyYAML's
// safe loader, and walked.

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"testing"

	"github.com/guardkit/guard/internal/guardtest"
)

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
		guardtest.RequirePeer(t, "python3", "python3-yaml")
		guardtest.Missing(t, "python3 cannot import yaml (install the Debian package python3-yaml)")
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
