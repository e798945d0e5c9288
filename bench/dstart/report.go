package main

import (
	"fmt"
	"github.com/guardkit/guard/bench/internal/tsv"
	"slices"
	"time"
)

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

func p90(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, (len(s)*9+9)/10-1)]
}

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond))
}

// report prints the table and writes the TSV lines.
func report(ss []*starter, tsvPath string) {
	fmt.Printf("%d starts of each, round-robin; the daemon is `sleep`. Exec times from the process events connector.\n\n", len(ss[0].exits))
	fmt.Println("| starter | to starter's exit: median ms | p90 ms | guard / this | to daemon's exec: median ms | running when the starter exited |")
	fmt.Println("|---|--:|--:|--:|--:|--:|")
	g := median(ss[0].exits)
	var lines []string
	for _, s := range ss {
		m := median(s.exits)
		fmt.Printf("| %s | %s | %s | %.2fx | %s | %d of %d |\n", s.label, ms(m), ms(p90(s.exits)),
			float64(g)/float64(m), ms(median(s.execs)), s.ready, len(s.exits))
		lines = append(lines,
			fmt.Sprintf("dstart.%s.exit_ms\t%s", s.key, ms(m)),
			fmt.Sprintf("dstart.%s.exec_ms\t%s", s.key, ms(median(s.execs))),
			fmt.Sprintf("dstart.%s.ready\t%d/%d", s.key, s.ready, len(s.exits)))
	}
	if tsvPath == "" {
		return
	}
	if err := tsv.Append(tsvPath, lines...); err != nil {
		fail(err)
	}
}
