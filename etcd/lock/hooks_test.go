package etcdlock

import (
	"context"
	"errors"
	"sync"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// keepAliveTTL0 answers as etcd does for a lease it no longer has.
func keepAliveTTL0(ctx context.Context, id clientv3.LeaseID) (*clientv3.LeaseKeepAliveResponse, error) {
	return &clientv3.LeaseKeepAliveResponse{ID: id, TTL: 0}, rpctypes.ErrLeaseNotFound
}

// blockedUntil fails keepalives while mu is locked, then renews through real.
func blockedUntil(mu *sync.Mutex, real func(context.Context, clientv3.LeaseID) (*clientv3.LeaseKeepAliveResponse, error)) func(context.Context, clientv3.LeaseID) (*clientv3.LeaseKeepAliveResponse, error) {
	return func(ctx context.Context, id clientv3.LeaseID) (*clientv3.LeaseKeepAliveResponse, error) {
		if !mu.TryLock() {
			<-ctx.Done()
			return nil, errors.Join(ctx.Err())
		}
		mu.Unlock()
		return real(ctx, id)
	}
}
