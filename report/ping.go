package report

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Time bounds of pings and pushes.
const (
	// AttemptTimeout bounds one HTTP request.
	AttemptTimeout = 5 * time.Second
	// Budget bounds each report (all its attempts, and for the end ping the
	// wait for the start ping).
	Budget = 10 * time.Second
	// Attempts is how many times a report is tried: a connection error, a
	// timeout, a 429 or a 5xx is tried again after 0.5s, then 1s.
	Attempts = 3
)

// CheckURL checks a --ping or --push URL: http or https, a host, no
// fragment. Its error never holds the URL.
func CheckURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, errors.New("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("want an http:// or https:// URL")
	case u.Host == "" || u.Hostname() == "":
		return nil, errors.New("the URL has no host")
	case u.Fragment != "" || strings.HasSuffix(raw, "#"):
		return nil, errors.New("the URL has a #fragment")
	}
	return u, nil
}

// Where names a URL without its secrets: scheme and host only.
func Where(u *url.URL) string { return u.Scheme + "://" + u.Host }

// Pinger pings one check URL for one run. Create it with NewPinger; Start
// and End are each called at most once, Start first.
type Pinger struct {
	url    *url.URL
	rid    string
	client *http.Client
	fails  atomic.Int32
	logf   func(format string, a ...any)

	startDone chan struct{}
	cancel    context.CancelFunc
	mu        sync.Mutex
}

// NewPinger returns a Pinger for u (checked by CheckURL) with a fresh run
// id. logf receives one line per failed ping, naming only the URL's scheme
// and host; nil discards them. It starts nothing.
func NewPinger(u *url.URL, logf func(format string, a ...any)) *Pinger {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Pinger{url: u, rid: newRunID(), logf: logf,
		client: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// RunID is the run's id, the rid parameter of every ping.
func (p *Pinger) RunID() string { return p.rid }

// Failures is how many pings failed so far (after all their attempts).
func (p *Pinger) Failures() int { return int(p.fails.Load()) }

// Start sends URL/start?rid=R in the background and returns at once: the job
// is not kept waiting for it.
func (p *Pinger) Start() {
	ctx, cancel := context.WithTimeout(context.Background(), Budget)
	p.mu.Lock()
	p.startDone, p.cancel = make(chan struct{}), cancel
	p.mu.Unlock()
	go func() {
		defer close(p.startDone)
		defer cancel()
		p.send(ctx, http.MethodGet, "start", nil)
	}()
}

// End sends URL/<status>?rid=R as a POST with body, after the start ping
// (if any) is done; it returns within Budget. A start ping still in flight
// when half of Budget has passed is given up, so the end ping goes out.
func (p *Pinger) End(status int, body []byte) {
	p.mu.Lock()
	done, cancel := p.startDone, p.cancel
	p.mu.Unlock()
	began := time.Now()
	if done != nil {
		select {
		case <-done:
		case <-time.After(Budget / 2):
			cancel()
			<-done
		}
	}
	ctx, stop := context.WithDeadline(context.Background(), began.Add(Budget))
	defer stop()
	p.send(ctx, http.MethodPost, strconv.Itoa(status), body)
}

// send makes one ping, trying again as Attempts says; it counts and logs a
// failure.
func (p *Pinger) send(ctx context.Context, method, what string, body []byte) {
	u := *p.url
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + what
	u.RawPath = ""
	q := u.Query()
	q.Set("rid", p.rid)
	u.RawQuery = q.Encode()
	err := attempt(ctx, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
		if err != nil {
			return false, errors.New("cannot build the request")
		}
		if body != nil {
			req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		}
		req.Header.Set("User-Agent", "guard")
		return do(p.client, req)
	})
	if err != nil {
		p.fails.Add(1)
		if what != "start" {
			what = "end (exit status " + what + ")"
		}
		p.logf("--ping %s: %s ping failed: %v", Where(p.url), what, err)
	}
}

// attempt calls try until it succeeds, returns a final error, Attempts are
// used up, or ctx ends.
func attempt(ctx context.Context, try func(context.Context) (retry bool, err error)) error {
	delay := 500 * time.Millisecond
	var err error
	for i := 0; i < Attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%v (gave up: time budget spent)", err)
			case <-time.After(delay):
			}
			delay *= 2
		}
		actx, cancel := context.WithTimeout(ctx, AttemptTimeout)
		var retry bool
		retry, err = try(actx)
		cancel()
		if err == nil || !retry {
			return err
		}
		if ctx.Err() != nil {
			return err
		}
	}
	return err
}

// do makes one request and reads (a bounded part of) the answer. Its error
// never holds the URL: only what went wrong.
func do(c *http.Client, req *http.Request) (retry bool, err error) {
	resp, err := c.Do(req)
	if err != nil {
		return true, clean(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	return false, fmt.Errorf("HTTP status %d", resp.StatusCode)
}

// clean strips the URL from a client error: *url.Error names it whole.
func clean(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("no answer in time")
	}
	return err
}

// newRunID returns a random UUID (version 4), as healthchecks.io wants.
func newRunID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
