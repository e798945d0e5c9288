package instance

import (
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	in := Record{PID: 4242, StartTicks: 991, BootID: "b-1", PIDNS: 4026531836, Host: "h",
		Acquired: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Name: "backup",
		Command: QuoteCommand([]string{"sh", "-c", "echo a\nb"}), Token: 77}
	out, err := ParseRecord(in.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if out.PID != in.PID || out.Token != in.Token || !out.Acquired.Equal(in.Acquired) || out.Command != in.Command || out.PIDNS != in.PIDNS {
		t.Fatalf("round trip: got %+v want %+v", out, in)
	}
	rel := in
	rel.LastPID, rel.PID, rel.Released = rel.PID, 0, in.Acquired.Add(time.Second)
	out, err = ParseRecord(rel.Marshal())
	if err != nil || out.PID != 0 || out.LastPID != 4242 || out.Released.IsZero() {
		t.Fatalf("released round trip: %+v, %v", out, err)
	}
}

func TestParseRecordHostile(t *testing.T) {
	good := (&Record{PID: 123, Token: 5, Acquired: time.Unix(1, 0)}).Marshal()
	withSum := func(body string) []byte {
		r := &Record{}
		_ = r
		return []byte(body + "sum=" + crcHex(body) + "\n")
	}
	tests := []struct {
		name    string
		in      []byte
		partial bool // being written / torn, as opposed to malformed
	}{
		{"empty", nil, true},
		{"no checksum", []byte("123\nstart=1\n"), true},
		{"torn", good[:len(good)/2], true},
		{"bad checksum", append(append([]byte{}, good[:len(good)-10]...), []byte("00000000\n")...), true},
		{"negative pid", withSum("-1\ntoken=1\n"), false},
		{"zero pid and not released", withSum("0\ntoken=1\n"), false},
		{"wraps to -1 in pid_t", withSum("4294967295\ntoken=1\n"), false},
		{"huge", withSum("99999999999999999999\n"), false},
		{"plus sign", withSum("+123\n"), false},
		{"spaces", withSum(" 123\n"), false},
		{"hex", withSum("0x7b\n"), false},
		{"junk after pid", withSum("123abc\n"), false},
		{"bad token", withSum("123\ntoken=-3\n"), false},
		{"not key value", withSum("123\nhello\n"), false},
		{"empty pid line not released", withSum("\ntoken=3\n"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRecord(tc.in)
			if err == nil {
				t.Fatalf("accepted %q as %+v", tc.in, r)
			}
			if got := errors.Is(err, errPartial); got != tc.partial {
				t.Fatalf("partial=%v, want %v (err %v)", got, tc.partial, err)
			}
		})
	}
}

func TestParseRecordIgnoresOldTail(t *testing.T) {
	long := (&Record{PID: 999, Token: 1, Command: strings.Repeat("x", 500)}).Marshal()
	short := (&Record{PID: 123, Token: 2}).Marshal()
	mixed := append(append([]byte{}, short...), long[len(short):]...)
	r, err := ParseRecord(mixed)
	if err != nil || r.PID != 123 || r.Token != 2 {
		t.Fatalf("got %+v, %v; want the new record", r, err)
	}
}

func TestMarshalNoForgedKeys(t *testing.T) {
	r := &Record{PID: 5, Name: "x\ntoken=1", Command: "a\nsum=00000000", Token: 9}
	out, err := ParseRecord(r.Marshal())
	if err != nil || out.Token != 9 {
		t.Fatalf("a newline in a value forged a key: %+v, %v", out, err)
	}
	if len((&Record{PID: 5, Command: strings.Repeat("y", 10000)}).Marshal()) > MaxRecord {
		t.Fatal("record exceeds MaxRecord")
	}
}

func TestNextToken(t *testing.T) {
	now := time.UnixMicro(1_000_000)
	tests := []struct {
		prev, want uint64
		refused    bool
	}{
		{prev: 0, want: 1_000_000},
		{prev: 5, want: 1_000_000},
		{prev: 1_000_000, want: 1_000_001}, // clock did not advance
		{prev: 2_000_000, want: 2_000_001}, // clock went back
		{prev: maxToken - 1, want: maxToken},
		{prev: maxToken, refused: true}, // hostile: never back, never wrap
		{prev: 1 << 63, refused: true},
		{prev: 1<<64 - 1, refused: true},
	}
	for _, tc := range tests {
		got, err := nextToken(tc.prev, now)
		if tc.refused {
			if err == nil {
				t.Errorf("nextToken(%d) = %d, want a refusal", tc.prev, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("nextToken(%d) = %d, %v; want %d", tc.prev, got, err, tc.want)
		}
	}
}

func TestLooksLikeRecord(t *testing.T) {
	full := string((&Record{PID: 12, Token: 3}).Marshal())
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"", true}, {"123", true}, {"123\nsta", true}, {full[:len(full)-3], true}, {"\ntoken=4\n", true},
		{"precious\n", false}, {"root:x:0:0::/root:/bin/bash\n", false}, {"123\nhello world\nmore\n", false},
		{"#!/bin/sh\n", false},
	} {
		if got := looksLikeRecord([]byte(tc.in)); got != tc.want {
			t.Errorf("looksLikeRecord(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// PID 1 may hold a lock (a container's entrypoint); its record reads back.
func TestRecordOfPIDOne(t *testing.T) {
	r, err := ParseRecord((&Record{PID: 1, Token: 3}).Marshal())
	if err != nil || r.PID != 1 {
		t.Fatalf("got %+v, %v", r, err)
	}
}

func TestRecordLastSuccess(t *testing.T) {
	when := time.Date(2026, 12, 1, 17, 0, 0, 123, time.UTC)
	r := &Record{PID: 42, Token: 7, LastSuccess: when}
	got, err := ParseRecord(r.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastSuccess.Equal(when) {
		t.Fatalf("LastSuccess = %v, want %v", got.LastSuccess, when)
	}
	// A record another user wrote: anything but a UTC RFC 3339 time in
	// range makes it malformed (never a time that suppresses runs).
	for _, v := range []string{"2026-12-01T17:00:00+01:00", "yesterday", "1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "", "2026-12-01T17:00:00Z "} {
		body := "42\nstart=1\nlast_success=" + v + "\n"
		b := []byte(body + fmt.Sprintf("sum=%08x\n", crc32.ChecksumIEEE([]byte(body))))
		if _, err := ParseRecord(b); err == nil {
			t.Errorf("last_success=%q: parsed, want an error", v)
		}
	}
}
