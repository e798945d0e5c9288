package report

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// A job name is any lock file's base name when --name is not given: tabs,
// backslashes, quotes, newlines, invalid UTF-8. Whatever it holds, the push
// is valid text format (a Pushgateway answers 400 otherwise and the run's
// gauges are lost) and its name label says the name as well as it can.
func TestPushOddJobNames(t *testing.T) {
	var mu sync.Mutex
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
	}))
	defer srv.Close()
	for name, want := range map[string]string{
		"plain":        "plain",
		"tab\there":    "tab\there",
		`back\slash`:   `back\slash`,
		`qu"ote`:       `qu"ote`,
		"new\nline":    "new\nline",
		"bad\xffutf8":  "bad\uFFFDutf8",
		"ünïcode name": "ünïcode name",
	} {
		mu.Lock()
		bodies = nil
		mu.Unlock()
		p := &Pusher{URL: mustURL(t, srv.URL), Job: name, Instance: "i"}
		if err := p.Started(context.Background(), time.Now()); err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		mu.Lock()
		body := bodies[0]
		mu.Unlock()
		parser := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := parser.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			t.Errorf("job %q: the push is not valid text format: %v\n%s", name, err, body)
			continue
		}
		mf := mfs["guard_job_running"]
		if mf == nil || len(mf.Metric) != 1 {
			t.Errorf("job %q: no guard_job_running in\n%s", name, body)
			continue
		}
		for _, l := range mf.Metric[0].Label {
			if l.GetName() == "name" && l.GetValue() != want {
				t.Errorf("job %q: name label %q, want %q", name, l.GetValue(), want)
			}
		}
	}
}
