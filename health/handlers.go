package health

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxScrapesInFlight bounds concurrent /metrics requests; more get 503.
const maxScrapesInFlight = 4

// NewHandler returns the health endpoints on their own mux, configured by o
// (only Lock, Reloads, Ready, Gatherer, ErrorLog and WriteTimeout are used):
//
//   - GET /livez: 200 "ok" whenever the process can answer.
//   - GET /readyz: 200 "ok" when the lock is held, not lost, and Ready
//     reports true; otherwise 503 with one line per check
//     ("[-]lock failed: waiting for the lock (standby)") and
//     "readyz check failed".
//   - GET /healthz: the /readyz status code with a JSON body:
//     {"status":"ok"|"fail","ready":bool,
//     "lock":{"path","held","waiting","lost","pid","since","token"},
//     "reloads":{"total","failed","last_success"}}; "ready" is Ready's own
//     answer, "since" and "last_success" are RFC 3339 in UTC or null.
//   - GET /metrics: o.Gatherer in the Prometheus text format (not served if
//     Gatherer is nil). At most 4 scrapes run at once, each bounded by 3/4
//     of WriteTimeout; a failing collector does not fail the scrape.
//
// With ?verbose, /livez, /readyz and /healthz answer with the per-check text
// view ("[+]lock ok", ..., "readyz check passed"). HEAD is served like GET,
// other methods get 405, other paths 404. Responses are never cached. The
// handlers only call the reporters, never touch files, and take no locks.
func NewHandler(o Options) http.Handler {
	h := &handler{lock: o.Lock, reloads: o.Reloads, ready: o.Ready}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", h.livez)
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.HandleFunc("GET /healthz", h.healthz)
	if o.Gatherer != nil {
		opts := promhttp.HandlerOpts{
			ErrorHandling:       promhttp.ContinueOnError,
			MaxRequestsInFlight: maxScrapesInFlight,
			Timeout:             o.withDefaults().WriteTimeout * 3 / 4,
			// The body is ~11 KB: gzip saves little on a scrape, and its
			// per-scrape compressor state raised peak RSS by ~0.8 MiB.
			DisableCompression: true,
		}
		if o.ErrorLog != nil {
			opts.ErrorLog = o.ErrorLog
		}
		mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, opts))
	}
	return noStore(mux)
}

func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

type handler struct {
	lock    LockReporter
	reloads ReloadReporter
	ready   func() bool
}

// check is the outcome of one named probe check; reason is a fixed text.
type check struct {
	name   string
	ok     bool
	reason string
}

func (h *handler) lockState() LockState {
	if h.lock == nil {
		return LockState{}
	}
	return h.lock.LockState()
}

func (h *handler) programReady() bool { return h.ready == nil || h.ready() }

// readiness returns the /readyz checks for ls.
func (h *handler) readiness(ls LockState) []check {
	lc := check{name: "lock", ok: ls.Held && !ls.Lost}
	switch {
	case ls.Lost:
		lc.reason = "lock path no longer names the locked file"
	case ls.Held:
	case ls.Waiting:
		lc.reason = "waiting for the lock (standby)"
	default:
		lc.reason = "lock not held"
	}
	rc := check{name: "ready", ok: h.programReady()}
	if !rc.ok {
		rc.reason = "program not ready"
	}
	return []check{lc, rc}
}

func (h *handler) livez(w http.ResponseWriter, r *http.Request) {
	writeChecks(w, r, "livez", []check{{name: "ping", ok: true}})
}

func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	writeChecks(w, r, "readyz", h.readiness(h.lockState()))
}

// writeChecks answers 200 "ok" if every check passed, else 503 with the
// per-check view; ?verbose forces the per-check view.
func writeChecks(w http.ResponseWriter, r *http.Request, endpoint string, checks []check) {
	failed := false
	var b strings.Builder
	for _, c := range checks {
		if c.ok {
			b.WriteString("[+]" + c.name + " ok\n")
		} else {
			failed = true
			b.WriteString("[-]" + c.name + " failed: " + c.reason + "\n")
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch {
	case failed:
		w.WriteHeader(http.StatusServiceUnavailable)
		b.WriteString(endpoint + " check failed\n")
	case verbose(r):
		b.WriteString(endpoint + " check passed\n")
	default:
		b.Reset()
		b.WriteString("ok")
	}
	_, _ = w.Write([]byte(b.String()))
}

func verbose(r *http.Request) bool {
	_, ok := r.URL.Query()["verbose"]
	return ok
}

type healthzBody struct {
	Status  string      `json:"status"`
	Ready   bool        `json:"ready"`
	Lock    lockJSON    `json:"lock"`
	Reloads reloadsJSON `json:"reloads"`
	Lease   *leaseJSON  `json:"lease,omitempty"`
}

// leaseJSON is /healthz's "lease", present while a renewed lease (etcd)
// is held.
type leaseJSON struct {
	TTLSeconds float64 `json:"ttl_seconds"`
	Deadline   *string `json:"deadline"`
	Renewals   uint64  `json:"renewals"`
	Failures   uint64  `json:"renewal_failures"`
	Jeopardy   bool    `json:"jeopardy"`
}

// leaseReporter is a LockReporter that also knows a renewed lease (State).
type leaseReporter interface{ LeaseState() LeaseState }

type lockJSON struct {
	Path    string  `json:"path"`
	Held    bool    `json:"held"`
	Waiting bool    `json:"waiting"`
	Lost    bool    `json:"lost"`
	PID     int     `json:"pid"`
	Since   *string `json:"since"`
	Token   uint64  `json:"token"`
}

type reloadsJSON struct {
	Total       uint64  `json:"total"`
	Failed      uint64  `json:"failed"`
	LastSuccess *string `json:"last_success"`
}

func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	ls := h.lockState()
	checks := h.readiness(ls)
	if verbose(r) {
		writeChecks(w, r, "healthz", checks)
		return
	}
	var rs ReloadState
	if h.reloads != nil {
		rs = h.reloads.ReloadState()
	}
	body := healthzBody{
		Status: "ok",
		Ready:  checks[1].ok,
		Lock: lockJSON{
			Path: ls.Path, Held: ls.Held, Waiting: ls.Waiting, Lost: ls.Lost,
			PID: ls.PID, Since: rfc3339(ls.Since), Token: ls.Token,
		},
		Reloads: reloadsJSON{Total: rs.Total, Failed: rs.Failed, LastSuccess: rfc3339(rs.LastSuccess)},
	}
	if lr, ok := h.lock.(leaseReporter); ok {
		if l := lr.LeaseState(); l.Active {
			body.Lease = &leaseJSON{TTLSeconds: l.TTL.Seconds(), Deadline: rfc3339(l.Deadline),
				Renewals: l.Renewals, Failures: l.Failures, Jeopardy: l.Jeopardy}
		}
	}
	code := http.StatusOK
	if !checks[0].ok || !checks[1].ok {
		body.Status, code = "fail", http.StatusServiceUnavailable
	}
	buf, err := json.Marshal(body)
	if err != nil { // cannot happen: plain strings, bools and numbers
		http.Error(w, "encode healthz: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(buf, '\n'))
}

// rfc3339 formats t in UTC, or returns nil for the zero time.
func rfc3339(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339Nano)
	return &s
}
