package etcdtest

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Start starts a one-node etcd in dir on free 127.0.0.1 ports and returns
// it with its client endpoint (host:port).
func Start(dir string) (*embed.Etcd, string, error) {
	client, peer := freeURL(), freeURL()
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, "", fmt.Errorf("not ready after 30s")
	}
	return e, client.Host, nil
}

// freeURL picks a free port (a small race with other programs, which the
// start would report).
func freeURL() url.URL {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return url.URL{Scheme: "http", Host: ln.Addr().String()}
}

// StartCluster starts an n-node etcd cluster in dir (one subdirectory per
// member) on free 127.0.0.1 ports and returns its members and their client
// endpoints, once every member is ready.
func StartCluster(dir string, n int) ([]*embed.Etcd, []string, error) {
	cfgs := make([]*embed.Config, n)
	var initial []string
	for i := range cfgs {
		client, peer := freeURL(), freeURL()
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = filepath.Join(dir, cfg.Name)
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
		cfg.InitialClusterToken = "guard-test"
		cfgs[i] = cfg
		initial = append(initial, cfg.Name+"="+peer.String())
	}
	members := make([]*embed.Etcd, 0, n)
	stop := func() {
		for _, e := range members {
			e.Close()
		}
	}
	var eps []string
	for _, cfg := range cfgs {
		cfg.InitialCluster = strings.Join(initial, ",")
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			stop()
			return nil, nil, err
		}
		members = append(members, e)
		eps = append(eps, cfg.ListenClientUrls[0].Host)
	}
	for _, e := range members {
		select {
		case <-e.Server.ReadyNotify():
		case <-time.After(60 * time.Second):
			stop()
			return nil, nil, fmt.Errorf("cluster not ready after 60s")
		}
	}
	return members, eps, nil
}
