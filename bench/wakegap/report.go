package main

import (
	"fmt"
	"github.com/guardkit/guard/bench/internal/tsv"
	"slices"
	"time"
)

// summary is the distribution of one waiter's gaps.
type summary struct{ median, p90 time.Duration }

func summarize(gaps []time.Duration) summary {
	if len(gaps) == 0 {
		return summary{}
	}
	s := slices.Clone(gaps)
	slices.Sort(s)
	return summary{median: quantile(s, 0.5), p90: quantile(s, 0.9)}
}

// quantile returns the nearest-rank q-quantile of the sorted s; the median
// of an even count is the mean of the two middle values.
func quantile(s []time.Duration, q float64) time.Duration {
	if q == 0.5 && len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func us(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(d)/float64(time.Microsecond))
}

func ratio(a, b time.Duration) string {
	if a == 0 || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", float64(a)/float64(b))
}

// report prints the Markdown table, with ratios of medians to ref's.
func report(ws []*waiter, ref *waiter) {
	re, rs := summarize(ref.execs), summarize(ref.gaps)
	fmt.Println("| waiter | wakes by | n | to exec: median µs | p90 µs | / flock(1) | to stamp: median µs | p90 µs | / flock(1) |")
	fmt.Println("|---|---|--:|--:|--:|--:|--:|--:|--:|")
	for _, w := range ws {
		e, s := summarize(w.execs), summarize(w.gaps)
		fmt.Printf("| %s | %s | %d | %s | %s | %s | %s | %s | %s |\n", w.label, w.how, len(w.gaps),
			us(e.median), us(e.p90), ratio(e.median, re.median), us(s.median), us(s.p90), ratio(s.median, rs.median))
	}
	g := ws[0]
	ge, gs := summarize(g.execs), summarize(g.gaps)
	verdict := "MISSED"
	if float64(gs.median) <= 1.2*float64(rs.median) {
		verdict = "met"
	}
	fmt.Printf("\n%s / flock(1), medians: to stamp %s (goal <= 1.2x: %s), to exec %s.\n",
		g.label, ratio(gs.median, rs.median), verdict, ratio(ge.median, re.median))
}

// writeTSV appends "takeover.KEY.exec_us" and "takeover.KEY.stamp_us" lines
// (medians) to path, for scripts/bench.sh.
func writeTSV(path string, ws []*waiter) error {
	var lines []string
	for _, w := range ws {
		lines = append(lines,
			tsv.Line("takeover."+w.key+".exec_us", us(summarize(w.execs).median)),
			tsv.Line("takeover."+w.key+".stamp_us", us(summarize(w.gaps).median)),
			tsv.Line("takeover."+w.key+".n", len(w.gaps)))
	}
	return tsv.Append(path, lines...)
}
