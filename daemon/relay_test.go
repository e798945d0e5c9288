//go:build linux

package daemon

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestFilterState(t *testing.T) {
	for _, tc := range []struct {
		in, kept string
		dropped  []string
	}{
		{in: "READY=1", kept: "READY=1"},
		{in: "MAINPID=1\nREADY=1\nSTATUS=ok", kept: "READY=1\nSTATUS=ok", dropped: []string{"MAINPID"}},
		{in: "RELOADING=1\nMONOTONIC_USEC=5\n", kept: "RELOADING=1\nMONOTONIC_USEC=5"},
		{in: "FDSTORE=1\nFDNAME=x\nNOTIFYACCESS=all\nWATCHDOG_USEC=1", dropped: []string{"FDSTORE", "FDNAME", "NOTIFYACCESS", "WATCHDOG_USEC"}},
		{in: "WATCHDOG=1\nEXTEND_TIMEOUT_USEC=9\nERRNO=2\nSTOPPING=1", kept: "WATCHDOG=1\nEXTEND_TIMEOUT_USEC=9\nERRNO=2\nSTOPPING=1"},
		{in: "garbage\n\nSTATUS=a=b", kept: "STATUS=a=b", dropped: []string{"malformed line"}},
	} {
		kept, dropped := FilterState(tc.in)
		if kept != tc.kept || !slices.Equal(dropped, tc.dropped) {
			t.Errorf("FilterState(%q) = %q, %q; want %q, %q", tc.in, kept, dropped, tc.kept, tc.dropped)
		}
	}
}

// The relay lives in a 0700 directory, refuses a live sender that is not
// its descendant (here: the program itself), and removes its directory on
// Close.
func TestRelayRefusesNonDescendants(t *testing.T) {
	r, err := ListenRelay(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(r.dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("relay directory %v, %v; want mode 0700", fi, err)
	}
	out := make(chan RelayMessage, 1)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- r.Run(ctx, out) }()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: r.Path(), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("READY=1")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitFor)
	for r.Refused() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if r.Refused() != 1 || len(out) != 0 {
		t.Fatalf("refused %d, relayed %d; want the program's own datagram refused", r.Refused(), len(out))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.dir); !os.IsNotExist(err) {
		t.Fatalf("relay directory after Close: %v", err)
	}
}

// A parent too deep for a socket path there (a long $RUNTIME_DIRECTORY) is
// not a reason for the job not to start: the relay goes to the temporary
// directory instead.
func TestRelayLongParent(t *testing.T) {
	parent := t.TempDir()
	for len(parent) < 100 {
		parent += "/dddddddddd"
	}
	if err := os.MkdirAll(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	r, err := ListenRelay(parent)
	if err != nil {
		t.Fatalf("ListenRelay(%d-byte parent): %v", len(parent), err)
	}
	defer r.Close()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: r.Path(), Net: "unixgram"})
	if err != nil {
		t.Fatalf("dial %s: %v", r.Path(), err)
	}
	c.Close()
	// A parent that fits is used as given.
	short := t.TempDir()
	r2, err := ListenRelay(short)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if filepath.Dir(filepath.Dir(r2.Path())) != short {
		t.Fatalf("relay at %s, want it in %s", r2.Path(), short)
	}
}
