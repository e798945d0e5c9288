package report

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// server answers with the statuses in order (the last one repeated) and
// records the paths it was asked.
func server(t *testing.T, statuses ...int) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		code := statuses[min(len(paths), len(statuses))-1]
		mu.Unlock()
		if code == http.StatusFound {
			http.Redirect(w, r, "http://elsewhere.example/steal", code)
			return
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), paths...) }
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := CheckURL(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// 5xx is tried again, 4xx and a redirect are not; a failure is logged
// without the URL's path or query, and counted.
func TestPingAttempts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		statuses []int
		asked    int
		fails    int
	}{
		{"ok", []int{200}, 1, 0},
		{"5xx then ok", []int{503, 200}, 2, 0},
		{"always 5xx", []int{500}, Attempts, 1},
		{"404 is final", []int{404}, 1, 1},
		{"a redirect is not followed", []int{302}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, paths := server(t, tc.statuses...)
			var logged []string
			p := NewPinger(mustURL(t, srv.URL+"/s3cr3t?k=s3cr3t"), func(f string, a ...any) {
				logged = append(logged, strings.TrimSpace(strings.ReplaceAll(f, "%v", "")))
				for _, x := range a {
					if s, ok := x.(string); ok {
						logged = append(logged, s)
					} else if e, ok := x.(error); ok {
						logged = append(logged, e.Error())
					}
				}
			})
			p.End(0, []byte("body"))
			if got := paths(); len(got) != tc.asked || got[0] != "POST /s3cr3t/0" {
				t.Errorf("asked %v, want %d POSTs to /s3cr3t/0", got, tc.asked)
			}
			if p.Failures() != tc.fails {
				t.Errorf("Failures = %d, want %d", p.Failures(), tc.fails)
			}
			if strings.Contains(strings.Join(logged, " "), "s3cr3t") {
				t.Errorf("the log holds the URL's secret: %q", logged)
			}
		})
	}
}

// A server that never answers costs at most Budget for the end ping, the
// start ping in flight included.
func TestPingBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the ping budget (10s)")
	}
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-stop }))
	defer srv.Close()
	defer close(stop)
	p := NewPinger(mustURL(t, srv.URL), nil)
	p.Start()
	began := time.Now()
	p.End(1, nil)
	if d := time.Since(began); d > Budget+2*time.Second {
		t.Errorf("End took %v, want at most about %v", d, Budget)
	}
	if p.Failures() != 2 {
		t.Errorf("Failures = %d, want 2 (start and end)", p.Failures())
	}
}

func TestCheckURL(t *testing.T) {
	for _, s := range []string{"http://h/x", "https://hc-ping.com/uuid", "http://127.0.0.1:9091"} {
		if _, err := CheckURL(s); err != nil {
			t.Errorf("CheckURL(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "hc-ping.com/s3cr3t", "ftp://h/s3cr3t", "http:///s3cr3t", "http://h/s3cr3t#x", "http://h/s3cr3t#", "http://:80/s3cr3t", "%zz"} {
		_, err := CheckURL(s)
		if err == nil {
			t.Errorf("CheckURL(%q): accepted", s)
		} else if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("CheckURL(%q): %v holds the URL", s, err)
		}
	}
}

// The group URL escapes the job and instance, and leaves out an empty
// instance.
func TestPushGroupURL(t *testing.T) {
	p := &Pusher{URL: mustURL(t, "http://gw:9091/"), Job: "a@b", Instance: "x y"}
	if got := p.groupURL(); got != "http://gw:9091/metrics/job/a@b/instance/x%20y" {
		t.Errorf("groupURL = %q", got)
	}
	p.Instance = ""
	if got := p.groupURL(); got != "http://gw:9091/metrics/job/a@b" {
		t.Errorf("groupURL without instance = %q", got)
	}
}
