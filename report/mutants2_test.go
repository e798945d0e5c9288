package report

import (
	"net/http"
	"testing"
)

// Tests written against mutants of this package that the other tests let
// live (the second mutation pass).

// README: a ping is retried on 429 (Too Many Requests), as on 5xx.
func TestPingRetriesTooManyRequests(t *testing.T) {
	srv, paths := server(t, http.StatusTooManyRequests, http.StatusOK)
	p := NewPinger(mustURL(t, srv.URL+"/check"), func(string, ...any) {})
	p.End(0, []byte("body"))
	if got := paths(); len(got) != 2 {
		t.Errorf("asked %v, want the 429 tried again", got)
	}
	if p.Failures() != 0 {
		t.Errorf("Failures = %d, want 0 (the second attempt succeeded)", p.Failures())
	}
}
