package tests

// deploy/cron/guard.cron: its job lines run with the lock busy, and its
// textfile read by node_exporter.

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/guardkit/guard/internal/guardtest"
)

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
			if i := slices.Index(args, "--jitter"); i >= 0 {
				args[i+1] = "0" // sleeping minutes before the lock is not for a test
			}
			dd := slices.Index(args, "--")
			args = append(args[:dd+1], "true")
			env := []string{"GUARD_DIR=" + dir}
			holder := depStart(t, env, guardBin, "run", "--name", depFlag(args, "--name"), "--", "sleep", "1000")
			guardtest.Eventually(t, "the holder", func() bool {
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
	ne := guardtest.RequirePeer(t, "prometheus-node-exporter", "prometheus-node-exporter")
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
	addr := healthAddr(t)
	p := depStart(t, nil, ne, "--collector.disable-defaults", "--collector.textfile",
		"--collector.textfile.directory="+textfiles, "--web.listen-address="+addr)
	var body string
	guardtest.Eventually(t, "node_exporter metrics", func() bool {
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
