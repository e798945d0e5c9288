package health

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Default limits, used where Options leaves a field zero.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 10 * time.Second
	DefaultWriteTimeout      = 15 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultMaxHeaderBytes    = 16 << 10
)

// Options configures [NewHandler] and [NewServer]. Zero timeouts and limits
// take the Default* values; none can be turned off.
type Options struct {
	// Addr is the TCP address to listen on, as for net.Listen ("host:port";
	// port 0 picks a free one). It is bound exactly as given: an empty
	// host listens on every interface. Required by Server.Start.
	Addr string
	// Lock reports the lock; nil means "never held".
	Lock LockReporter
	// Reloads reports reload counts; nil means none.
	Reloads ReloadReporter
	// Ready says whether the program is ready (e.g. (*State).Ready); it must
	// answer from memory without blocking. nil means always ready, so that
	// readiness depends on the lock alone.
	Ready func() bool
	// Gatherer serves /metrics (e.g. from NewRegistry); nil means no
	// /metrics endpoint (404).
	Gatherer prometheus.Gatherer
	// ErrorLog receives the HTTP server's and the metrics handler's errors;
	// nil means the log package's standard logger.
	ErrorLog *log.Logger

	ReadHeaderTimeout time.Duration // time to read request headers
	ReadTimeout       time.Duration // time to read a whole request
	WriteTimeout      time.Duration // time to write a response
	IdleTimeout       time.Duration // keep-alive idle time
	MaxHeaderBytes    int           // request header size limit
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&o.ReadTimeout, DefaultReadTimeout)
	def(&o.WriteTimeout, DefaultWriteTimeout)
	def(&o.IdleTimeout, DefaultIdleTimeout)
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return o
}

// ErrServerStarted is returned by [Server.Start] on a Server already started
// or shut down.
var ErrServerStarted = errors.New("health: server already started or shut down")

// Server serves [NewHandler]'s endpoints over HTTP. Create it with
// [NewServer]; it is safe for concurrent use.
type Server struct {
	opts Options
	srv  *http.Server

	mu      sync.Mutex
	addr    net.Addr
	started bool
	done    chan struct{} // closed when Serve returns
	err     error         // Serve's error other than http.ErrServerClosed
}

// NewServer returns a Server for o. It starts no goroutine and binds nothing;
// see [Server.Start].
func NewServer(o Options) *Server {
	o = o.withDefaults()
	return &Server{
		opts: o,
		srv: &http.Server{
			Addr:              o.Addr,
			Handler:           NewHandler(o),
			ReadHeaderTimeout: o.ReadHeaderTimeout,
			ReadTimeout:       o.ReadTimeout,
			WriteTimeout:      o.WriteTimeout,
			IdleTimeout:       o.IdleTimeout,
			MaxHeaderBytes:    o.MaxHeaderBytes,
			ErrorLog:          o.ErrorLog,
		},
	}
}

// Start binds Options.Addr and serves it in a new goroutine. Bind errors
// (empty address, address in use, permission) are returned here, so a
// program can fail at start; ctx bounds only the bind. On success it returns
// the bound address (useful with port 0). A Server starts at most once: later
// calls, and calls after Shutdown, return [ErrServerStarted].
func (s *Server) Start(ctx context.Context) (net.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return nil, ErrServerStarted
	}
	if s.opts.Addr == "" {
		return nil, errors.New("health: listen: empty address")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("health: listen %s: %w", s.opts.Addr, err)
	}
	s.started, s.addr, s.done = true, ln.Addr(), make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
		}
	}()
	return s.addr, nil
}

// Addr returns the bound address, or nil before a successful Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Shutdown stops accepting connections, closes idle ones and waits for
// active requests to finish until ctx is done; then it closes the remaining
// connections forcibly and returns ctx's error. Otherwise it returns the
// error that stopped serving early, if any. It is idempotent and returns nil
// for a Server never started. Once shut down, a Server cannot be restarted.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	done := s.done
	s.started = true // a Server shut down before Start never starts
	s.mu.Unlock()
	if done == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	<-done
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(err, s.err)
}
