package etcdlock

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// DefaultDialTimeout bounds Dial when Config.DialTimeout is zero.
const DefaultDialTimeout = 5 * time.Second

// Config says how to reach etcd. Empty fields fall back to etcdctl's
// environment variables (ETCDCTL_CACERT, ETCDCTL_CERT, ETCDCTL_KEY,
// ETCDCTL_USER as "name" or "name:password", ETCDCTL_PASSWORD,
// ETCDCTL_DIAL_TIMEOUT), except Endpoints: ETCDCTL_ENDPOINTS is never used,
// so that a lock is never taken on a cluster nobody named for it.
type Config struct {
	Endpoints    []string // required: host:port or http(s)://host:port
	CACert       string   // file of CA certificates to verify the servers by
	Cert, Key    string   // client certificate and key files
	User         string   // user name, or "name:password"
	PasswordFile string   // file holding the password (a trailing newline is dropped)
	DialTimeout  time.Duration
	// Logger receives clientv3's logs; nil discards them.
	Logger *zap.Logger
}

// Dial connects to etcd and checks that it answers (a count-only read of
// KeyRoot, which any answer, even "permission denied", proves) within
// DialTimeout. An error matching ErrUnavailable means etcd could not be
// reached or did not answer; other errors are the configuration's (files,
// credentials). The caller closes the client.
func Dial(ctx context.Context, c Config) (*clientv3.Client, error) {
	c = c.withEnv(os.Getenv)
	if len(c.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints given")
	}
	cfg := clientv3.Config{Endpoints: c.Endpoints, DialTimeout: c.DialTimeout, Logger: c.Logger,
		Username: c.User, Context: context.Background()}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if name, pw, ok := strings.Cut(c.User, ":"); ok {
		cfg.Username, cfg.Password = name, pw
	}
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("etcd password: %w", err)
		}
		cfg.Password = strings.TrimRight(string(b), "\r\n")
	}
	var err error
	if cfg.TLS, err = c.tls(); err != nil {
		return nil, err
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, unavailable("etcd "+strings.Join(c.Endpoints, ","), err)
	}
	pctx, cancel := context.WithTimeout(ctx, c.DialTimeout)
	defer cancel()
	_, err = cli.Get(pctx, KeyRoot, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil && isUnavailable(err) {
		cli.Close()
		return nil, unavailable("etcd "+strings.Join(c.Endpoints, ","), err)
	}
	return cli, nil
}

// withEnv fills empty fields from etcdctl's variables.
func (c Config) withEnv(getenv func(string) string) Config {
	fill := func(v *string, name string) {
		if *v == "" {
			*v = getenv(name)
		}
	}
	fill(&c.CACert, "ETCDCTL_CACERT")
	fill(&c.Cert, "ETCDCTL_CERT")
	fill(&c.Key, "ETCDCTL_KEY")
	if c.User == "" && c.PasswordFile == "" {
		c.User = getenv("ETCDCTL_USER")
		if pw := getenv("ETCDCTL_PASSWORD"); pw != "" && c.User != "" && !strings.Contains(c.User, ":") {
			c.User += ":" + pw
		}
	}
	if c.DialTimeout == 0 {
		c.DialTimeout, _ = time.ParseDuration(getenv("ETCDCTL_DIAL_TIMEOUT"))
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	return c
}

// tls returns the TLS configuration, or nil when no file is given and no
// endpoint says https.
func (c Config) tls() (*tls.Config, error) {
	https := false
	for _, ep := range c.Endpoints {
		https = https || strings.HasPrefix(ep, "https://")
	}
	if c.CACert == "" && c.Cert == "" && c.Key == "" && !https {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CACert != "" {
		pem, err := os.ReadFile(c.CACert)
		if err != nil {
			return nil, fmt.Errorf("etcd CA certificates: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd CA certificates: no certificate in %s", c.CACert)
		}
	}
	if (c.Cert == "") != (c.Key == "") {
		return nil, errors.New("etcd client certificate: give both the certificate and its key")
	}
	if c.Cert != "" {
		pair, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("etcd client certificate: %w", err)
		}
		t.Certificates = []tls.Certificate{pair}
	}
	return t, nil
}

// ServerVersion returns the version of the etcd server at endpoint, as it
// reports it (e.g. "3.5.13").
func ServerVersion(ctx context.Context, cli *clientv3.Client, endpoint string) (string, error) {
	st, err := cli.Status(ctx, endpoint)
	if err != nil {
		return "", unavailable("status of "+endpoint, err)
	}
	return st.Version, nil
}

// UnsafeServer says why an etcd server of version v may revoke a lease
// early, or "": releases before 3.4.31 and 3.5.13 let a stale leader revoke
// a lease that was just renewed (etcd#17465), which no client-side deadline
// can guard against.
func UnsafeServer(v string) string {
	var major, minor, patch int
	if n, _ := fmt.Sscanf(v, "%d.%d.%d", &major, &minor, &patch); n != 3 {
		return ""
	}
	fixed := map[[2]int]int{{3, 4}: 31, {3, 5}: 13}
	if p, ok := fixed[[2]int{major, minor}]; (ok && patch < p) || major < 3 || (major == 3 && minor < 4) {
		return fmt.Sprintf("etcd %s may revoke a lease early through a stale leader (etcd#17465; fixed in 3.4.31, 3.5.13 and later): a holder's job can then overlap the next one; upgrade the cluster", v)
	}
	return ""
}

// ServerInfo returns the version and the cluster id (hex) of the etcd
// server the lock's client reaches first, for reports.
func (l *Locker) ServerInfo(ctx context.Context) (version, cluster string, err error) {
	eps := l.cli.Endpoints()
	if len(eps) == 0 {
		return "", "", errors.New("etcd: no endpoints")
	}
	rctx, cancel := l.request(ctx)
	defer cancel()
	st, err := l.cli.Status(rctx, eps[0])
	if err != nil {
		return "", "", unavailable("status of "+eps[0], err)
	}
	return st.Version, fmt.Sprintf("%x", st.Header.ClusterId), nil
}
