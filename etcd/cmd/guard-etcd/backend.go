package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/guardkit/guard/daemon"
	etcdlock "github.com/guardkit/guard/etcd/lock"
	"github.com/guardkit/guard/instance"
)

// exitUsage is the contract's usage error.
const exitUsage = 64

// backend keeps guard's locks in etcd: the cli.Backend of guard-etcd.
type backend struct {
	endpoints   string
	ttl, grace  time.Duration
	dialTimeout time.Duration
	cfg         etcdlock.Config
}

// Flags implements cli.Backend.
func (b *backend) Flags(fs *flag.FlagSet) {
	fs.StringVar(&b.endpoints, "etcd", "", "comma-separated etcd `ENDPOINTS` (default $GUARD_ETCD_ENDPOINTS; never $ETCDCTL_ENDPOINTS)")
	fs.DurationVar(&b.ttl, "ttl", etcdlock.DefaultTTL, "the lease's time to live: how long the lock outlives a holder cut off from etcd")
	fs.DurationVar(&b.grace, "lease-grace", etcdlock.DefaultGrace, "time between SIGTERM and SIGKILL to the job's tree when the lease is about to end")
	fs.DurationVar(&b.dialTimeout, "etcd-dial-timeout", etcdlock.DefaultDialTimeout, "how long to wait for etcd to answer at start")
	fs.StringVar(&b.cfg.CACert, "etcd-cacert", "", "CA certificates `FILE` to verify etcd by (default $ETCDCTL_CACERT)")
	fs.StringVar(&b.cfg.Cert, "etcd-cert", "", "client certificate `FILE` (default $ETCDCTL_CERT)")
	fs.StringVar(&b.cfg.Key, "etcd-key", "", "client key `FILE` (default $ETCDCTL_KEY)")
	fs.StringVar(&b.cfg.User, "etcd-user", "", "etcd `USER` (default $ETCDCTL_USER)")
	fs.StringVar(&b.cfg.PasswordFile, "etcd-password-file", "", "`FILE` holding the etcd password (never on the command line; default $ETCDCTL_PASSWORD)")
}

// Open implements cli.Backend: lock is a key prefix (with or without its
// trailing /); without one the lock is /guard/NAME/.
func (b *backend) Open(lock, name string, argv []string) (instance.Locker, string, error) {
	eps := b.endpoints
	if eps == "" {
		eps = os.Getenv("GUARD_ETCD_ENDPOINTS")
	}
	if eps == "" {
		return nil, "", daemon.WithExitCode(exitUsage, errors.New("--etcd ENDPOINTS (or GUARD_ETCD_ENDPOINTS) is required"))
	}
	opts := etcdlock.Options{Name: name, Command: argv, TTL: b.ttl, Grace: b.grace}
	if lock != "" {
		opts.Key = strings.TrimSuffix(lock, "/") + "/"
	}
	if err := opts.Check(); err != nil {
		return nil, "", daemon.WithExitCode(exitUsage, err)
	}
	b.cfg.Endpoints = strings.Split(eps, ",")
	b.cfg.DialTimeout = b.dialTimeout
	ctx, cancel := context.WithTimeout(context.Background(), b.dialTimeout)
	defer cancel()
	cli, err := etcdlock.Dial(ctx, b.cfg)
	if err != nil {
		return nil, "", err
	}
	for _, ep := range b.cfg.Endpoints {
		if v, err := etcdlock.ServerVersion(ctx, cli, ep); err == nil {
			if why := etcdlock.UnsafeServer(v); why != "" {
				fmt.Fprintf(os.Stderr, "guard: warning: %s: %s\n", ep, why)
			}
		}
	}
	// The client lives as long as the process: the lease it renews is
	// released before guard exits.
	lk := etcdlock.New(cli, opts)
	return lk, lk.Key(), nil
}
