package report_test

import (
	"fmt"
	"strings"

	"github.com/guardkit/guard/report"
)

// A Capture keeps the head and the tail of any amount of output; Tail gives
// the last whole lines for a ping's body.
func ExampleCapture() {
	var c report.Capture
	fmt.Fprintln(&c, "starting")
	for range 100000 {
		fmt.Fprintln(&c, "working...")
	}
	fmt.Fprintln(&c, "error: disk full")
	fmt.Println(c.Total(), "bytes written")
	tail := string(c.Tail(40))
	fmt.Printf("ping body: %q\n", tail)
	var b strings.Builder
	c.WriteTo(&b)
	fmt.Println(strings.Contains(b.String(), "bytes not kept"), b.Len() < report.HeadSize+report.TailSize+100)
	// Output:
	// 1100026 bytes written
	// ping body: "working...\nworking...\nerror: disk full\n"
	// true true
}
