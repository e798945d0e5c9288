package etcdlock

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/guardkit/guard/etcd/internal/etcdtest"
)

// A leader change in a 3-node cluster while a lock is held at the default
// TTL does not cost the healthy holder its lease: its renewals go on
// through the other members, and neither Ending nor Lost fires.
func TestLeaderFailoverKeepsHealthyHolder(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-node cluster and a leader change take about 20s")
	}
	members, eps, err := etcdtest.StartCluster(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	stopped := -1
	defer func() {
		for i, m := range members {
			if i != stopped {
				m.Close()
			}
		}
	}()
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	opts := testOptions(t)
	opts.TTL, opts.Grace, opts.Margin = DefaultTTL, DefaultGrace, DefaultMargin
	le := tryLock(t, New(cli, opts))
	var leader int
	for i, m := range members {
		if m.Server.Leader() == m.Server.MemberID() {
			leader = i
		}
	}
	// Stop the leader: the others elect a new one.
	members[leader].Close()
	stopped = leader
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*DefaultTTL)
	defer cancel()
	select {
	case <-le.Ending():
		t.Fatalf("Ending fired %v after the leader stopped: %v", time.Since(start), le.Err())
	case <-le.Lost():
		t.Fatalf("Lost fired %v after the leader stopped: %v", time.Since(start), le.Err())
	case <-ctx.Done():
	}
	if err := le.Release(); err != nil {
		t.Fatalf("release after the failover: %v", err)
	}
}
