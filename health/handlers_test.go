package health

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var (
	t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 = t0.Add(time.Hour)
)

// serve sends one request to h and returns the recorded response.
func serve(t *testing.T, h http.Handler, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

// healthzJSON mirrors the documented /healthz body, with pointers to tell
// null from zero.
type healthzJSON struct {
	Status string `json:"status"`
	Ready  *bool  `json:"ready"`
	Lock   struct {
		Path    *string `json:"path"`
		Held    *bool   `json:"held"`
		Waiting *bool   `json:"waiting"`
		Lost    *bool   `json:"lost"`
		PID     *int    `json:"pid"`
		Since   *string `json:"since"`
		Token   *uint64 `json:"token"`
	} `json:"lock"`
	Reloads struct {
		Total       *uint64 `json:"total"`
		Failed      *uint64 `json:"failed"`
		LastSuccess *string `json:"last_success"`
	} `json:"reloads"`
}

func TestHandlerStates(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(*State)
		ready    bool
		wantCode int    // of /readyz and /healthz
		wantText string // in /readyz?verbose
		held     bool
		pid      int
		waiting  bool
		lost     bool
	}{
		{name: "never held", ready: true, wantCode: 503,
			wantText: "[-]lock failed: lock not held\n[+]ready ok\nreadyz check failed\n"},
		{name: "waiting standby", setup: func(s *State) { s.Contended(); s.Waiting() }, ready: true,
			wantCode: 503, waiting: true,
			wantText: "[-]lock failed: waiting for the lock (standby)\n[+]ready ok\nreadyz check failed\n"},
		{name: "held and ready", setup: func(s *State) { s.Acquired(4242, 7, t0, 0) }, ready: true,
			wantCode: 200, held: true, pid: 4242,
			wantText: "[+]lock ok\n[+]ready ok\nreadyz check passed\n"},
		{name: "held not ready", setup: func(s *State) { s.Acquired(4242, 7, t0, 0) },
			wantCode: 503, held: true, pid: 4242,
			wantText: "[+]lock ok\n[-]ready failed: program not ready\nreadyz check failed\n"},
		{name: "lost", setup: func(s *State) { s.Acquired(4242, 7, t0, 0); s.Lost() }, ready: true,
			wantCode: 503, held: true, pid: 4242, lost: true,
			wantText: "[-]lock failed: lock path no longer names the locked file\n[+]ready ok\nreadyz check failed\n"},
		{name: "released", setup: func(s *State) { s.Acquired(4242, 7, t0, 0); s.Released() }, ready: true,
			wantCode: 503,
			wantText: "[-]lock failed: lock not held\n[+]ready ok\nreadyz check failed\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st State
			st.SetLockPath("/run/guard/job.lock")
			if tt.setup != nil {
				tt.setup(&st)
			}
			st.SetReady(tt.ready)
			h := NewHandler(Options{Lock: &st, Reloads: &st, Ready: st.Ready})

			if rec := serve(t, h, "GET", "/livez"); rec.Code != 200 || rec.Body.String() != "ok" {
				t.Errorf("/livez = %d %q, want 200 \"ok\"", rec.Code, rec.Body)
			}
			rec := serve(t, h, "GET", "/readyz")
			if rec.Code != tt.wantCode {
				t.Errorf("/readyz = %d, want %d", rec.Code, tt.wantCode)
			}
			if tt.wantCode == 200 && rec.Body.String() != "ok" {
				t.Errorf("/readyz body = %q, want \"ok\"", rec.Body)
			}
			if rec := serve(t, h, "GET", "/readyz?verbose"); rec.Body.String() != tt.wantText {
				t.Errorf("/readyz?verbose body = %q, want %q", rec.Body, tt.wantText)
			}
			wantHealthz := strings.Replace(tt.wantText, "readyz", "healthz", 1)
			if rec := serve(t, h, "GET", "/healthz?verbose=1"); rec.Code != tt.wantCode || rec.Body.String() != wantHealthz {
				t.Errorf("/healthz?verbose = %d %q, want %d %q", rec.Code, rec.Body, tt.wantCode, wantHealthz)
			}

			rec = serve(t, h, "GET", "/healthz")
			if rec.Code != tt.wantCode {
				t.Errorf("/healthz = %d, want %d", rec.Code, tt.wantCode)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("/healthz Content-Type = %q", ct)
			}
			var b healthzJSON
			if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
				t.Fatalf("/healthz body %q: %v", rec.Body, err)
			}
			wantStatus := map[int]string{200: "ok", 503: "fail"}[tt.wantCode]
			l := b.Lock
			if b.Status != wantStatus || b.Ready == nil || *b.Ready != tt.ready ||
				l.Path == nil || *l.Path != "/run/guard/job.lock" ||
				l.Held == nil || *l.Held != tt.held || l.Waiting == nil || *l.Waiting != tt.waiting ||
				l.Lost == nil || *l.Lost != tt.lost || l.PID == nil || *l.PID != tt.pid || l.Token == nil {
				t.Errorf("/healthz body = %s", rec.Body)
			}
			if tt.held {
				if l.Since == nil || *l.Token != 7 {
					t.Fatalf("/healthz held: since=%v token=%v, want set and 7", l.Since, *l.Token)
				}
				if got, err := time.Parse(time.RFC3339, *l.Since); err != nil || !got.Equal(t0) {
					t.Errorf("lock.since = %q (%v), want %v", *l.Since, err, t0)
				}
			} else if l.Since != nil || *l.Token != 0 {
				t.Errorf("/healthz not held: body %s, want since null and token 0", rec.Body)
			}
		})
	}
}

func TestHealthzReloads(t *testing.T) {
	var st State
	h := NewHandler(Options{Lock: &st, Reloads: &st})
	check := func(total, failed uint64, last *time.Time) {
		t.Helper()
		var b healthzJSON
		if err := json.Unmarshal(serve(t, h, "GET", "/healthz").Body.Bytes(), &b); err != nil {
			t.Fatal(err)
		}
		r := b.Reloads
		if r.Total == nil || *r.Total != total || r.Failed == nil || *r.Failed != failed {
			t.Errorf("reloads = %v/%v, want %d/%d", r.Total, r.Failed, total, failed)
		}
		switch {
		case last == nil && r.LastSuccess != nil:
			t.Errorf("reloads.last_success = %q, want null", *r.LastSuccess)
		case last != nil && (r.LastSuccess == nil || *r.LastSuccess != last.Format(time.RFC3339Nano)):
			t.Errorf("reloads.last_success = %v, want %v", r.LastSuccess, last)
		}
	}
	check(0, 0, nil)
	st.Reload(true, t0)
	st.Reload(false, t1)
	check(2, 1, &t0)
	st.Reload(true, t1)
	check(3, 1, &t1)
}

func TestHandlerRouting(t *testing.T) {
	var st State
	st.Acquired(1, 1, t0, 0)
	h := NewHandler(Options{Lock: &st, Gatherer: NewRegistry(&st, BuildInfo{})})
	tests := []struct {
		method, target string
		want           int
	}{
		{"GET", "/livez", 200},
		{"HEAD", "/livez", 200},
		{"GET", "/livez?verbose", 200},
		{"GET", "/readyz", 200}, // nil Ready: the lock decides
		{"HEAD", "/healthz", 200},
		{"GET", "/metrics", 200},
		{"POST", "/livez", 405},
		{"PUT", "/metrics", 405},
		{"DELETE", "/healthz", 405},
		{"GET", "/", 404},
		{"GET", "/livez/", 404},
		{"GET", "/metrics/x", 404},
		{"GET", "/debug/pprof/", 404},
		{"GET", "/debug/vars", 404},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			rec := serve(t, h, tt.method, tt.target)
			if rec.Code != tt.want {
				t.Errorf("code = %d, want %d", rec.Code, tt.want)
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}
			if tt.want == 405 && !strings.Contains(rec.Header().Get("Allow"), "GET") {
				t.Errorf("Allow = %q, want GET listed", rec.Header().Get("Allow"))
			}
		})
	}
}

func TestVerboseLivez(t *testing.T) {
	h := NewHandler(Options{})
	rec := serve(t, h, "GET", "/livez?verbose")
	if want := "[+]ping ok\nlivez check passed\n"; rec.Code != 200 || rec.Body.String() != want {
		t.Errorf("/livez?verbose = %d %q, want 200 %q", rec.Code, rec.Body, want)
	}
}

func TestNilReporters(t *testing.T) {
	h := NewHandler(Options{})
	if rec := serve(t, h, "GET", "/readyz"); rec.Code != 503 {
		t.Errorf("/readyz without a LockReporter = %d, want 503", rec.Code)
	}
	if rec := serve(t, h, "GET", "/metrics"); rec.Code != 404 {
		t.Errorf("/metrics without a Gatherer = %d, want 404", rec.Code)
	}
	var b healthzJSON
	if err := json.Unmarshal(serve(t, h, "GET", "/healthz").Body.Bytes(), &b); err != nil {
		t.Fatal(err)
	}
	if b.Status != "fail" || b.Reloads.Total == nil || *b.Reloads.Total != 0 {
		t.Errorf("/healthz without reporters: %+v", b)
	}
}
