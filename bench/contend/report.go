package main

import (
	"fmt"
	"github.com/guardkit/guard/bench/internal/tsv"
	"slices"
	"time"
)

// median returns the median of f over rs (the lower middle one of an even count).
func median(rs []result, f func(result) time.Duration) time.Duration {
	if len(rs) == 0 {
		return 0
	}
	v := make([]time.Duration, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	return v[(len(v)-1)/2]
}

// exactlyOne reports whether every round ran the job once, with one winner
// and n-1 losers.
func exactlyOne(rs []result, n int) bool {
	for _, r := range rs {
		if r.ran != 1 || r.won != 1 || r.lost != n-1 || r.other != 0 {
			return false
		}
	}
	return len(rs) > 0
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond)) }

// report prints the table and writes the TSV lines.
func report(cs []*contender, n int, hold time.Duration, tsvPath string) {
	fmt.Printf("%d contenders released at once on one free lock; the job holds it %v. Medians over %d rounds.\n\n",
		n, hold, len(cs[0].runs))
	fmt.Println("| contender | losers exited: median ms | all losers exited ms | job started ms | all exited ms | rounds with exactly one run |")
	fmt.Println("|---|--:|--:|--:|--:|--:|")
	var lines []string
	for _, c := range cs {
		ok := 0
		for _, r := range c.runs {
			if exactlyOne([]result{r}, n) {
				ok++
			}
		}
		mLosers := median(c.runs, func(r result) time.Duration { return r.losers })
		mLast := median(c.runs, func(r result) time.Duration { return r.last })
		mTotal := median(c.runs, func(r result) time.Duration { return r.total })
		mJob := median(c.runs, func(r result) time.Duration { return r.job })
		fmt.Printf("| %s | %s | %s | %s | %s | %d of %d |\n", c.label, ms(mLosers), ms(mLast), ms(mJob), ms(mTotal), ok, len(c.runs))
		for _, r := range c.runs {
			if !exactlyOne([]result{r}, n) {
				note := ""
				if r.ran > 1 && r.last > r.job+hold {
					note = " (a loser came after the job ended: raise -hold)"
				}
				fmt.Printf("|   a round: %d ran, %d exit 0, %d exit %d, %d other%s | | | | | |\n", r.ran, r.won, r.lost, c.busy, r.other, note)
			}
		}
		one := "no"
		if exactlyOne(c.runs, n) {
			one = "yes"
		}
		lines = append(lines,
			fmt.Sprintf("contend.%s.losers_median_ms\t%s", c.key, ms(mLosers)),
			fmt.Sprintf("contend.%s.last_loser_ms\t%s", c.key, ms(mLast)),
			fmt.Sprintf("contend.%s.total_ms\t%s", c.key, ms(mTotal)),
			fmt.Sprintf("contend.%s.job_ms\t%s", c.key, ms(mJob)),
			fmt.Sprintf("contend.%s.exactly_one\t%s", c.key, one),
			fmt.Sprintf("contend.%s.rounds_ok\t%d/%d", c.key, ok, len(c.runs)))
	}
	lines = append(lines, fmt.Sprintf("contend.n\t%d", n), fmt.Sprintf("contend.hold_ms\t%s", ms(hold)))
	if tsvPath == "" {
		return
	}
	if err := tsv.Append(tsvPath, lines...); err != nil {
		fail(err)
	}
}
