package etcdlock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/guardkit/guard/instance"
)

// Stop and reload from any host. A request is a key under Key + "req/"
// (which sorts after every contender's key) naming the holder's token:
//
//	Key req/stop/TOKEN                ask the holder with TOKEN to stop
//	Key req/reload/TOKEN/NONCE        ask it to reload
//	Key req/ack/NONCE                 its answer: "ok" or the error
//
// A request is put under a lease of the asker's, so it goes away by itself;
// the answer under the holder's lease. A holder acts only on requests that
// name its own token: a request meant for an earlier holder never reaches a
// later one.

// requestTTL is how long a request key lives (seconds).
const requestTTL = 60

var _ instance.Controlled = (*Lease)(nil)

// Requests implements instance.Controlled: the stop and reload requests
// addressed to this holder, from the moment it took the lock.
func (le *Lease) Requests() <-chan instance.Request { return le.reqs }

func (l *Locker) reqKey(kind string, token uint64) string {
	return l.opts.Key + "req/" + kind + "/" + strconv.FormatUint(token, 10)
}

func (l *Locker) ackKey(nonce string) string { return l.opts.Key + "req/ack/" + nonce }

// watchRequests passes the requests naming this holder's token to
// Requests, until the lease ends.
func (le *Lease) watchRequests() {
	le.wg.Add(1)
	go func() {
		defer le.wg.Done()
		prefix := le.lock.opts.Key + "req/"
		stop := le.lock.reqKey("stop", le.Token())
		reload := le.lock.reqKey("reload", le.Token()) + "/"
		from := le.rev
		for le.ctx.Err() == nil {
			for wr := range le.lock.cli.Watch(le.ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(from), clientv3.WithFilterDelete()) {
				if wr.Err() != nil {
					break
				}
				for _, ev := range wr.Events {
					from = ev.Kv.ModRevision + 1
					if ev.Type != mvccpb.PUT {
						continue
					}
					switch k := string(ev.Kv.Key); {
					case k == stop:
						le.deliver(instance.Request{})
					case strings.HasPrefix(k, reload):
						nonce := k[len(reload):]
						le.deliver(instance.Request{Reload: true, Done: func(err error) { le.ack(nonce, err) }})
					}
				}
			}
			if le.ctx.Err() == nil {
				le.sleepUntil(boottime() + tick*5) // the watch broke: look again
			}
		}
	}()
}

func (le *Lease) deliver(r instance.Request) {
	select {
	case le.reqs <- r:
	case <-le.ctx.Done():
	}
}

// ack answers a reload request under the holder's lease.
func (le *Lease) ack(nonce string, err error) {
	msg := "ok"
	if err != nil {
		msg = err.Error()
	}
	ctx, cancel := le.lock.request(context.Background())
	defer cancel()
	le.lock.cli.Put(ctx, le.lock.ackKey(nonce), msg, clientv3.WithLease(le.id)) //nolint:errcheck // the asker times out
}

// RequestStop asks the holder with token to stop its job and release the
// lock. It does not wait: the lock becoming free (Inspect) is the answer.
func (l *Locker) RequestStop(ctx context.Context, token uint64) error {
	return l.putRequest(ctx, l.reqKey("stop", token))
}

// RequestReload asks the holder with token to forward SIGHUP to its job
// and waits for its answer until ctx is done.
func (l *Locker) RequestReload(ctx context.Context, token uint64) error {
	b := make([]byte, 8)
	rand.Read(b)
	nonce := hex.EncodeToString(b)
	ack := l.ackKey(nonce)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := l.cli.Watch(wctx, ack, clientv3.WithFilterDelete())
	if err := l.putRequest(ctx, l.reqKey("reload", token)+"/"+nonce); err != nil {
		return err
	}
	for wr := range w {
		if err := wr.Err(); err != nil {
			return unavailable("watch "+ack, err)
		}
		for _, ev := range wr.Events {
			if msg := string(ev.Kv.Value); msg != "ok" {
				return fmt.Errorf("the holder could not reload: %s", msg)
			}
			return nil
		}
	}
	return fmt.Errorf("no answer from the holder: %w", context.Cause(ctx))
}

// putRequest puts key under a short lease of its own.
func (l *Locker) putRequest(ctx context.Context, key string) error {
	rctx, cancel := l.request(ctx)
	defer cancel()
	g, err := l.cli.Grant(rctx, requestTTL)
	if err != nil {
		return unavailable("grant", err)
	}
	if _, err := l.cli.Put(rctx, key, "", clientv3.WithLease(g.ID)); err != nil {
		return unavailable("put "+key, err)
	}
	return nil
}
