package health

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// benchHandler serves target with h in a loop, as a ratio against
// BenchmarkBaseline (a bare net/http handler writing "ok").
func benchHandler(b *testing.B, h http.Handler, target string) {
	req := httptest.NewRequest("GET", target, nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("%s = %d", target, rec.Code)
		}
	}
}

func benchOptions() Options {
	st := goldenState()
	st.Released()
	st.Acquired(4242, 7, time.Now(), 0)
	st.SetReady(true)
	return Options{Lock: st, Reloads: st, Ready: st.Ready, Gatherer: NewRegistry(st, BuildInfo{})}
}

func BenchmarkBaseline(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok")
	})
	benchHandler(b, h, "/livez")
}

func BenchmarkLivez(b *testing.B)   { benchHandler(b, NewHandler(benchOptions()), "/livez") }
func BenchmarkHealthz(b *testing.B) { benchHandler(b, NewHandler(benchOptions()), "/healthz") }
func BenchmarkMetrics(b *testing.B) { benchHandler(b, NewHandler(benchOptions()), "/metrics") }
