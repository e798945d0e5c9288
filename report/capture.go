package report

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// Sizes of what a Capture keeps.
const (
	// HeadSize is how many bytes of the start of the output are kept.
	HeadSize = 64 << 10
	// TailSize is how many bytes of the end of the output are kept.
	TailSize = 192 << 10
	// PingBodySize bounds the body of the end ping: the output's tail.
	PingBodySize = 10 << 10
)

// Capture keeps the head and the tail of a job's output, in bounded memory.
// It is an io.Writer safe for concurrent use; its zero value is ready.
type Capture struct {
	mu      sync.Mutex
	head    []byte
	tail    []byte // a ring of TailSize bytes once full
	next    int    // where the ring's next byte goes (its oldest byte when full)
	full    bool   // the ring has wrapped
	total   int64  // bytes written
	dropped int64  // bytes between head and tail that were not kept
}

// Write keeps what fits in the head, then the latest TailSize bytes. It
// never fails.
func (c *Capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(p)
	c.total += int64(n)
	if room := HeadSize - len(c.head); room > 0 {
		k := min(room, len(p))
		c.head = append(c.head, p[:k]...)
		p = p[k:]
	}
	if len(p) == 0 {
		return n, nil
	}
	if c.tail == nil {
		c.tail = make([]byte, 0, TailSize)
	}
	if len(p) >= TailSize {
		c.dropped += c.kept() + int64(len(p)-TailSize)
		c.tail, c.next, c.full = append(c.tail[:0], p[len(p)-TailSize:]...), 0, true
		return n, nil
	}
	if !c.full {
		if room := TailSize - len(c.tail); len(p) <= room {
			c.tail = append(c.tail, p...)
			if len(c.tail) == TailSize {
				c.full, c.next = true, 0
			}
			return n, nil
		}
		room := TailSize - len(c.tail)
		c.tail = append(c.tail, p[:room]...)
		p = p[room:]
		c.full, c.next = true, 0
	}
	for len(p) > 0 { // overwrite the oldest bytes
		k := copy(c.tail[c.next:], p)
		c.dropped += int64(k)
		p = p[k:]
		c.next = (c.next + k) % TailSize
	}
	return n, nil
}

// kept is how many bytes the ring holds.
func (c *Capture) kept() int64 { return int64(len(c.tail)) }

// ordered returns the ring's bytes, oldest first.
func (c *Capture) ordered() []byte {
	if !c.full {
		return bytes.Clone(c.tail)
	}
	out := make([]byte, 0, TailSize)
	out = append(out, c.tail[c.next:]...)
	return append(out, c.tail[:c.next]...)
}

// Total returns how many bytes were written so far.
func (c *Capture) Total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// WriteTo writes what was kept: the head, then, if bytes were dropped, a
// line "[... N bytes not kept ...]", then the tail. It is what --quiet-success
// prints for a failed run.
func (c *Capture) WriteTo(w io.Writer) (int64, error) {
	c.mu.Lock()
	head, tail, dropped := bytes.Clone(c.head), c.ordered(), c.dropped
	c.mu.Unlock()
	var n int64
	for _, b := range [][]byte{head, marker(head, dropped), tail} {
		k, err := w.Write(b)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func marker(head []byte, dropped int64) []byte {
	if dropped == 0 {
		return nil
	}
	nl := ""
	if len(head) > 0 && head[len(head)-1] != '\n' {
		nl = "\n"
	}
	return fmt.Appendf(nil, "%s[... %d bytes not kept ...]\n", nl, dropped)
}

// Tail returns the last lines of the output, at most max bytes: the output's
// end, starting after the first newline within it unless the whole output
// fits (so the first line is whole), or the last max bytes if they hold no
// newline.
func (c *Capture) Tail(max int) []byte {
	c.mu.Lock()
	var all []byte
	if c.dropped == 0 { // head and tail are contiguous
		all = append(bytes.Clone(c.head), c.ordered()...)
	} else {
		all = c.ordered()
	}
	total := c.total
	c.mu.Unlock()
	if len(all) <= max && int64(len(all)) == total {
		return all
	}
	if len(all) > max {
		all = all[len(all)-max:]
	}
	// Cut before the first whole line, unless the cut lands at a line start.
	if i := bytes.IndexByte(all, '\n'); i >= 0 && i+1 < len(all) {
		all = all[i+1:]
	}
	return all
}
