package report

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// Whatever the sizes of the writes, a Capture keeps exactly the first
// HeadSize and the last TailSize bytes and counts the rest.
func TestCaptureKeepsHeadAndTail(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, total := range []int{0, 10, HeadSize, HeadSize + 1, HeadSize + TailSize, HeadSize + TailSize + 1, 3 * (HeadSize + TailSize), 5 << 20} {
		var all bytes.Buffer
		var c Capture
		for all.Len() < total {
			n := min(total-all.Len(), r.IntN(3*TailSize/2)+1)
			if r.IntN(2) == 0 {
				n = min(n, r.IntN(100)+1)
			}
			p := make([]byte, n)
			for i := range p {
				p[i] = byte('a' + (all.Len()+i)%26)
			}
			all.Write(p)
			c.Write(p)
		}
		var got bytes.Buffer
		c.WriteTo(&got)
		want := all.Bytes()
		if total > HeadSize+TailSize {
			want = append(append(bytes.Clone(want[:HeadSize]), fmt.Sprintf("\n[... %d bytes not kept ...]\n", total-HeadSize-TailSize)...), want[total-TailSize:]...)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("total %d: WriteTo gave %d bytes, want %d", total, got.Len(), len(want))
		}
		if c.Total() != int64(total) {
			t.Errorf("Total = %d, want %d", c.Total(), total)
		}
	}
}

func TestCaptureTail(t *testing.T) {
	var c Capture
	for i := range 100000 {
		fmt.Fprintf(&c, "line %d\n", i)
	}
	tail := string(c.Tail(PingBodySize))
	if len(tail) > PingBodySize || !strings.HasPrefix(tail, "line ") || !strings.HasSuffix(tail, "line 99999\n") {
		t.Fatalf("Tail: %d bytes, starts %q, ends %q", len(tail), tail[:min(20, len(tail))], tail[max(0, len(tail)-20):])
	}
	var small Capture
	small.Write([]byte("only\n"))
	if got := string(small.Tail(PingBodySize)); got != "only\n" {
		t.Fatalf("Tail of a short output = %q", got)
	}
}
