package instance

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// Micro-benchmarks of the lock's hot paths. Run them alone, not with the
// tests: go test -run '^$' -bench . ./instance/
// scripts/bench.sh measures the guard binary end to end.

func benchLock(b *testing.B) *FileLocker {
	b.Helper()
	l, err := New(Options{Path: filepath.Join(b.TempDir(), "bench.lock"), Name: "bench",
		Command: []string{"/usr/local/bin/backup.sh", "--full"}})
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkTryLockRelease is one uncontended acquisition and clean release:
// directory checks, flock, record read and write, release record, unlock.
func BenchmarkTryLockRelease(b *testing.B) {
	l := benchLock(b)
	b.ReportAllocs()
	for b.Loop() {
		le, err := l.TryLock(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if err := le.Release(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTryLockBusy is the cron "skip" path: the lock is held (here by
// another open file in this process), so TryLock fails and names the holder.
func BenchmarkTryLockBusy(b *testing.B) {
	l := heldLock(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.TryLock(context.Background()); err == nil {
			b.Fatal("second TryLock succeeded")
		}
	}
}

// heldLock returns a lock that this process holds until the benchmark ends.
func heldLock(b *testing.B) *FileLocker {
	l := benchLock(b)
	le, err := l.TryLock(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { le.Release() })
	return l
}

func benchRecord() *Record {
	at := time.Date(2025, 11, 24, 12, 0, 0, 123456789, time.UTC)
	return &Record{PID: 4242, StartTicks: 98765432, BootID: "3f2fdc5c-a58b-427a-934e-9d181cc0e4a1",
		PIDNS: 4026531836, Host: "host.example.org", Acquired: at, Name: "backup",
		Command: QuoteCommand([]string{"/usr/local/bin/backup.sh", "--full", "/srv/data"}),
		Token:   uint64(at.UnixMicro())}
}

func BenchmarkRecordMarshal(b *testing.B) {
	r := benchRecord()
	b.SetBytes(int64(len(r.Marshal())))
	b.ReportAllocs()
	for b.Loop() {
		r.Marshal()
	}
}

func BenchmarkParseRecord(b *testing.B) {
	raw := benchRecord().Marshal()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRecord(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInspectHeld is guard status on a held lock: /proc/locks, the
// record, and the holder's verification through /proc/PID (here this
// process holds it).
func BenchmarkInspectHeld(b *testing.B) {
	l := heldLock(b)
	b.ReportAllocs()
	for b.Loop() {
		h, err := Inspect(l.Path())
		if err != nil {
			b.Fatal(err)
		}
		if h.State != Held || !h.Verified {
			b.Fatalf("state %v, verified %v: %s", h.State, h.Verified, h.Reason)
		}
	}
}
