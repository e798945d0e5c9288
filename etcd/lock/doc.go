// Package etcdlock is guard's single-instance lock kept in etcd: the same
// lock across hosts. Locker implements instance.Locker and its Lease
// implements instance.Renewed, for guard-etcd (guard --etcd).
//
// # The model
//
//   - Keys. A lock is a key prefix, KeyRoot + NAME + "/" by default. Each
//     contender grants itself a lease of Options.TTL and puts
//     PREFIX + <lease ID, 16 hex digits> under it, in a transaction that
//     compares the key's create revision to 0 (as concurrency.Mutex does).
//     The value is guard's holder record (instance.Record: host, PID, start
//     time, boot id, PID namespace, name, command, times).
//   - Order. The contender whose key has the lowest create revision holds
//     the lock. A waiter watches the deletion of the key just before its own
//     (from the revision after the look that found it), then looks again, in
//     a transaction that also checks its own key is still there, until no
//     key before its own remains: first come, first served, and a release
//     wakes exactly one waiter, at once, with no polling.
//   - Token. The fencing token is the create revision of the holder's key.
//     etcd's revisions only grow, so tokens strictly increase across the
//     holders of a lock, whatever crashes in between.
//   - Last. PREFIX + "last", under no lease, keeps the last holder's record:
//     written at acquisition, rewritten at a clean Release with the release
//     time. So Inspect tells a lock never held or cleanly released (Free,
//     with the record) from one whose holder's lease ran out (Stale: a
//     crash, a partition, a revocation).
//   - TryLock (guard's --wait 0) leaves at once when someone else is first:
//     it revokes its lease, which deletes its key, and returns a
//     *instance.HeldError naming the holder. A Locker.Lock whose ctx ends does the
//     same, wrapping ctx.Err().
//
// # The deadline, and why it is computed from the send time
//
// etcd expires a lease once TTL has passed, on the leader's clock, since the
// leader received the last keepalive it accepted (or granted the lease);
// never sooner: a new leader extends every lease. The contender sent that
// request at S, on its own clock, before any server received it. With both
// clocks' rates within Rho of true time, the server cannot expire the lease
// before S + TTL*(1-2*Rho) of our time. Someone else can hold the lock only
// after the lease expired (its revocation deletes our key, which wakes the
// next waiter). So before
//
//	D = S + TTL*(1-2*Rho) - Margin
//
// nobody else holds the lock. Lost closes at D, Ending at D - Grace: a
// caller that sends SIGTERM at Ending and SIGKILL at Lost has the job's
// whole tree dead before the lock can pass on (contract, promise 9).
// Margin (default 1 s) covers the 100 ms granularity of the checks, this
// process's scheduling delays and the time SIGKILL takes to end the tree.
// Rho is 0.005: clocks drift by parts per million, so 0.5 % is very wide.
// Jeopardy closes at S + TTL/2 without an acknowledged renewal (report not
// ready). A keepalive answered with TTL 0, or the deletion of our key (an
// operator revoked the lease), closes Lost at once. Once closed, these
// channels stay closed: a stop once begun goes on.
//
// This is why the package does not use concurrency.Session or clientv3's
// KeepAlive helper: the helper computes its deadline as the receive time
// of each answer plus TTL and checks it once a second, so Session.Done
// can close up to the answer's whole round trip plus a second after the
// server may have expired the lease, and another holder may already run.
// Here each keepalive is one request (KeepAliveOnce) every TTL/3, its send
// time read before it leaves; an answer to an abandoned request is never
// counted.
//
// All deadlines are kept on CLOCK_BOOTTIME. Go's timers and time.Now's
// monotonic reading use CLOCK_MONOTONIC, which stops while the machine is
// suspended while etcd's clock does not: a timer would fire the length of
// the suspend too late. Instead a 100 ms ticker reads CLOCK_BOOTTIME and
// compares it with the deadlines, so a deadline that passed during a
// suspend is acted on within a tick of waking.
//
// # Limits
//
//   - A guard that is paused (SIGSTOP, a frozen cgroup, a VM stall) or
//     SIGKILLed cannot kill anything: its job's tree runs on until the
//     server hands the lock away, and then overlaps the next holder. What
//     helps: systemd's KillMode=control-group (the default), which ends the
//     whole unit when guard dies; guard run --pid-namespace, where the job's
//     tree lives in a PID namespace whose init dies with guard (Pdeathsig),
//     and the kernel kills the namespace whole. A paused guard stays a hole:
//     only the fencing token covers it.
//   - A process in uninterruptible sleep (D state, typically stuck I/O on a
//     network file system) dies only when the I/O returns, possibly after
//     the deadline. Renewal goes on after Lost until Release, which helps
//     only if etcd can be reached.
//
// Side effects already in flight (a request on the wire, a write queued at
// a remote service) outlive any kill. For those only the fencing token
// helps, checked by the resource itself, which refuses a token older than
// one it has seen. With the resource in etcd, one transaction does it
// (tokens zero-padded to 20 digits so that they compare as strings):
//
//	tok := fmt.Sprintf("%020d", lease.Token())
//	resp, err := cli.Txn(ctx).
//		If(clientv3.Compare(clientv3.Value("/res/token"), ">", tok)).
//		Then(). // a newer holder has written: refuse
//		Else(clientv3.OpPut("/res/token", tok), clientv3.OpPut("/res/data", v)).
//		Commit()
//	// resp.Succeeded: the write was refused as stale.
//
// A SQL resource does the same with UPDATE ... SET token = $1 WHERE
// token <= $1.
//
// Connecting: Dial builds a client from endpoints, TLS files, user and
// password file, falling back to etcdctl's ETCDCTL_* variables (never
// ETCDCTL_ENDPOINTS); an etcd that cannot be reached is ErrUnavailable,
// which guard maps to exit status 69.
package etcdlock
