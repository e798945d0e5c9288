package etcdlock

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/guardkit/guard/instance"
)

// Defaults of Options.
const (
	DefaultTTL    = 10 * time.Second
	DefaultGrace  = 2 * time.Second
	DefaultMargin = time.Second
	// KeyRoot is where the keys of named locks live: KeyRoot + NAME + "/".
	KeyRoot = "/guard/"
)

// Options configure a Locker.
type Options struct {
	// Name is the job's name, written into the record. When Key is empty it
	// also picks the key prefix: KeyRoot + Name + "/".
	Name string
	// Key is the lock's key prefix; it must end in "/", and no other lock's
	// prefix may start with it. Contenders put Key + 16 hex digits of their
	// lease ID; Key + "last" keeps the last holder's record.
	Key string
	// Command is the job's command line, for the record.
	Command []string
	// TTL is the lease's time to live (default DefaultTTL), rounded up to
	// whole seconds; etcd may grant more (its minimum is about 1.5 election
	// timeouts). It bounds how long the lock stays with a holder that
	// crashed or was cut off.
	TTL time.Duration
	// Grace is how long before the deadline Ending closes (default
	// DefaultGrace): the time the job's tree gets between SIGTERM and SIGKILL.
	Grace time.Duration
	// Margin is taken off every deadline (default DefaultMargin): it covers
	// the 100 ms granularity of the deadline checks, scheduling delays, and
	// the time a SIGKILL takes to end the tree. Lower it only in tests.
	Margin time.Duration
	// Timeout bounds each request to etcd (default: TTL). A request that
	// gets no answer in time fails with an error matching ErrUnavailable.
	Timeout time.Duration
}

// Check reports options that cannot work: no key, a key not ending in "/",
// or a TTL too short to renew the lease at least once before Ending, given
// Grace and Margin (TTL*(1-2*Rho) - Margin - Grace must exceed TTL/3).
func (o Options) Check() error {
	if o.Key == "" && (o.Name == "" || strings.Contains(o.Name, "/")) {
		return fmt.Errorf("etcd lock: no key prefix, and the name %q cannot make one (empty or with a /)", o.Name)
	}
	o = o.withDefaults()
	switch {
	case !strings.HasSuffix(o.Key, "/"):
		return fmt.Errorf("etcd lock: key prefix %q does not end in /", o.Key)
	case o.TTL < time.Second || o.Grace < 0 || o.Margin < 0:
		return fmt.Errorf("etcd lock: TTL %v below 1s, or a negative grace or margin", o.TTL)
	}
	if room := time.Duration(float64(o.ttl())*(1-2*Rho)) - o.Margin - o.Grace; room <= o.ttl()/3 {
		return fmt.Errorf("etcd lock: TTL %v too short for grace %v and margin %v: the job would be stopped before the first renewal", o.ttl(), o.Grace, o.Margin)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Key == "" {
		o.Key = KeyRoot + o.Name + "/"
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.Grace == 0 {
		o.Grace = DefaultGrace
	}
	if o.Margin == 0 {
		o.Margin = DefaultMargin
	}
	if o.Timeout == 0 {
		o.Timeout = o.ttl()
	}
	return o
}

// ttl is TTL rounded up to whole seconds, as it is asked of etcd.
func (o Options) ttl() time.Duration {
	return (o.TTL + time.Second - 1).Truncate(time.Second)
}

// Locker is a single-instance lock kept in etcd. It implements
// instance.Locker; the Lease it returns implements instance.Renewed.
type Locker struct {
	cli  *clientv3.Client
	opts Options
	// keepAliveOnce renews a lease once; tests replace it.
	keepAliveOnce func(ctx context.Context, id clientv3.LeaseID) (*clientv3.LeaseKeepAliveResponse, error)
}

var _ instance.Locker = (*Locker)(nil)

// New returns the lock that opts describe, kept through cli. It starts
// nothing and contacts no one. It panics if opts.Check fails: callers that
// take options from users check them first.
func New(cli *clientv3.Client, opts Options) *Locker {
	if err := opts.Check(); err != nil {
		panic(err)
	}
	return &Locker{cli: cli, opts: opts.withDefaults(), keepAliveOnce: cli.KeepAliveOnce}
}

// Key returns the lock's key prefix.
func (l *Locker) Key() string { return l.opts.Key }

// TryLock takes the lock if no one holds it or waits for it, and returns at
// once otherwise with a *instance.HeldError naming the holder (its own key is
// removed again). Errors reaching etcd match ErrUnavailable.
func (l *Locker) TryLock(ctx context.Context) (instance.Lease, error) {
	le, err := l.acquire(ctx, false)
	if err != nil {
		return nil, err
	}
	return le, nil
}

// Lock waits its turn for the lock (first come, first served) until ctx is
// done, waking as soon as the contender before it leaves. When ctx ends
// first, its key is removed, its lease revoked, and the error matches
// instance.ErrHeld and wraps ctx.Err(). If its lease is lost while it waits
// (a partition longer than the TTL), it starts again at the end of the
// queue. Errors reaching etcd match ErrUnavailable.
func (l *Locker) Lock(ctx context.Context) (instance.Lease, error) {
	for {
		le, err := l.acquire(ctx, true)
		if errors.Is(err, errLostWaiting) && ctx.Err() == nil {
			continue
		}
		if err != nil {
			return nil, err
		}
		return le, nil
	}
}

// errLostWaiting: the contender's lease or key went away while it waited.
var errLostWaiting = errors.New("lease lost while waiting")

// acquire enters the queue and, if it is not first, either leaves (wait
// false) or waits its turn.
func (l *Locker) acquire(ctx context.Context, wait bool) (*Lease, error) {
	le, first, err := l.enter(ctx)
	if err != nil {
		return nil, l.failed(ctx, wait, err)
	}
	if first.rev != le.rev && !wait {
		le.abandon()
		return nil, &instance.HeldError{Path: l.opts.Key, Holder: l.holderOf([]*contender{first}, nil)}
	}
	if first.rev != le.rev {
		err = le.waitTurn(ctx)
	}
	if err == nil {
		err = le.take(ctx, wait)
	}
	if err != nil {
		le.abandon()
		return nil, l.failed(ctx, wait, err)
	}
	return le, nil
}

// failed is the error of an attempt that ended with err: a wait that ctx
// ended is busy (wrapping ctx.Err()).
func (l *Locker) failed(ctx context.Context, wait bool, err error) error {
	switch {
	case wait && ctx.Err() != nil:
		return l.waitEnded(ctx.Err())
	case !wait && errors.Is(err, errLostWaiting):
		return fmt.Errorf("%s: %w", l.opts.Key, err)
	}
	return err
}

// waitEnded is the error of a wait that ctx ended: busy, naming the holder
// when a quick look finds it.
func (l *Locker) waitEnded(cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), min(l.opts.Timeout, time.Second))
	defer cancel()
	h, _ := l.Inspect(ctx)
	return &instance.HeldError{Path: l.opts.Key, Holder: h, Err: cause}
}

// request returns a context for one request to etcd, bounded by Timeout.
func (l *Locker) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, l.opts.Timeout)
}
