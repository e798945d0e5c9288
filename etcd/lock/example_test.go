package etcdlock_test

import (
	"context"
	"fmt"
	"log"

	clientv3 "go.etcd.io/etcd/client/v3"

	etcdlock "github.com/guardkit/guard/etcd/lock"
)

// A job that runs only while it holds the lock, stops when the lease
// ends, and writes to a resource that checks the fencing token.
func Example() {
	ctx := context.Background()
	cli, err := etcdlock.Dial(ctx, etcdlock.Config{Endpoints: []string{"127.0.0.1:2379"}})
	if err != nil {
		log.Fatal(err) // errors.Is(err, etcdlock.ErrUnavailable): exit 69
	}
	defer cli.Close()
	lease, err := etcdlock.New(cli, etcdlock.Options{Name: "backup"}).Lock(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer lease.Release()
	renewed := lease.(*etcdlock.Lease)

	// The resource refuses a token older than the newest it has seen.
	tok := fmt.Sprintf("%020d", lease.Token())
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.Value("/backup/token"), ">", tok)).
		Else(clientv3.OpPut("/backup/token", tok), clientv3.OpPut("/backup/state", "done")).
		Commit()
	if err == nil && resp.Succeeded {
		log.Print("refused: a newer holder has written")
	}
	select {
	case <-renewed.Ending(): // SIGTERM the job's tree
	case <-renewed.Lost(): // SIGKILL it
	default:
	}
}
