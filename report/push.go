package report

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Pusher pushes a job's gauges to a Prometheus Pushgateway, in the group
// job=<Job>, instance=<Instance> (Instance may be empty: no instance). It
// uses POST, which replaces only the metrics it sends: the end of a failed
// run sends no guard_job_last_success_timestamp_seconds, so the one a
// success pushed earlier stays. Only gauges are pushed; the Pushgateway adds
// push_time_seconds and push_failure_time_seconds itself. Each push is
// bounded by Budget, like a ping.
type Pusher struct {
	URL      *url.URL // the Pushgateway, e.g. http://pushgateway:9091
	Job      string   // the job's name: the job label and the name label
	Instance string
	Client   *http.Client // nil: a client that follows no redirect
}

// Started pushes guard_job_running 1 and guard_job_start_timestamp_seconds.
func (p *Pusher) Started(ctx context.Context, at time.Time) error {
	return p.push(ctx, []gauge{
		{"guard_job_running", 1},
		{"guard_job_start_timestamp_seconds", unix(at)},
	})
}

// Ended pushes the end of a run: guard_job_running 0, the exit code, the
// duration, guard_job_last_run_timestamp_seconds and, for a success,
// guard_job_last_success_timestamp_seconds, else
// guard_job_last_failure_timestamp_seconds.
func (p *Pusher) Ended(ctx context.Context, success bool, exitCode int, d time.Duration, at time.Time) error {
	g := []gauge{
		{"guard_job_running", 0},
		{"guard_job_last_exit_code", float64(exitCode)},
		{"guard_job_duration_seconds", d.Seconds()},
		{"guard_job_last_run_timestamp_seconds", unix(at)},
	}
	if success {
		g = append(g, gauge{"guard_job_last_success_timestamp_seconds", unix(at)})
	} else {
		g = append(g, gauge{"guard_job_last_failure_timestamp_seconds", unix(at)})
	}
	return p.push(ctx, g)
}

type gauge struct {
	name  string
	value float64
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// push POSTs the gauges in the text format, trying again as a ping does.
// Its error names the Pushgateway by scheme and host only.
func (p *Pusher) push(ctx context.Context, gs []gauge) error {
	ctx, cancel := context.WithTimeout(ctx, Budget)
	defer cancel()
	var body bytes.Buffer
	for _, g := range gs {
		fmt.Fprintf(&body, "# TYPE %s gauge\n%s{name=\"%s\"} %s\n", g.name, g.name,
			labelValue(p.Job), strconv.FormatFloat(g.value, 'g', -1, 64))
	}
	c := p.Client
	if c == nil {
		c = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	target := p.groupURL()
	err := attempt(ctx, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body.Bytes()))
		if err != nil {
			return false, fmt.Errorf("cannot build the request")
		}
		req.Header.Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		req.Header.Set("User-Agent", "guard")
		return do(c, req)
	})
	if err != nil {
		return fmt.Errorf("push to %s: %w", Where(p.URL), err)
	}
	return nil
}

// labelValue is s as a label value of the text format: valid UTF-8 (a
// Pushgateway refuses anything else; invalid bytes become U+FFFD), with only
// the escapes the format knows (\\, \" and \n; strconv.Quote's \t or \xff
// make the whole push a 400).
func labelValue(s string) string {
	return labelEscaper.Replace(strings.ToValidUTF8(s, "\uFFFD"))
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// groupURL is URL/metrics/job/<Job>[/instance/<Instance>], each value made
// valid UTF-8 and escaped as a path segment (an empty instance is left out).
func (p *Pusher) groupURL() string {
	u := *p.URL
	path := strings.TrimSuffix(u.Path, "/") + "/metrics/job/" + url.PathEscape(strings.ToValidUTF8(p.Job, "\uFFFD"))
	if p.Instance != "" {
		path += "/instance/" + url.PathEscape(strings.ToValidUTF8(p.Instance, "\uFFFD"))
	}
	u.Path, u.RawPath = "", ""
	return strings.TrimSuffix(u.String(), "/") + path
}
