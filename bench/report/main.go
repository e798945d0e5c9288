// Command report is the arithmetic of scripts/bench.sh: medians, the
// wrapper-overhead table from hyperfine's JSON, and the one summary table
// of every figure, guard against its peer.
//
//	report median [-q 0.5]                      numbers on stdin -> their quantile
//	report hyperfine -tsv FILE JSON...          wrapper overhead: table, medians to FILE
//	report table FILE                           the summary table from FILE's key<TAB>value lines
//
// The drivers (bench/wakegap, bench/contend, bench/dstart) and the script
// append "key<TAB>value" lines to one file; report table reads it. It is used
// only by scripts/bench.sh.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	tsvfile "github.com/guardkit/guard/bench/internal/tsv"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "median":
		err = medianCmd(os.Args[2:])
	case "hyperfine":
		err = hyperfineCmd(os.Args[2:])
	case "table":
		err = tableCmd(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: report median [-q Q] | report hyperfine -tsv FILE JSON... | report table FILE")
	os.Exit(64)
}

// quantile returns the q-quantile of v (nearest rank; the median of an
// even count is the mean of the two middle values).
func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if q == 0.5 && len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func medianCmd(args []string) error {
	fs := flag.NewFlagSet("median", flag.ExitOnError)
	q := fs.Float64("q", 0.5, "the quantile")
	fs.Parse(args)
	b, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	var v []float64
	decimals := 0 // printed with as many decimals as the most precise input
	for _, f := range strings.Fields(string(b)) {
		x, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return fmt.Errorf("median: %q is not a number", f)
		}
		v = append(v, x)
		if _, frac, ok := strings.Cut(f, "."); ok {
			decimals = max(decimals, len(frac))
		}
	}
	if len(v) == 0 {
		return fmt.Errorf("median: no numbers")
	}
	fmt.Println(strconv.FormatFloat(quantile(v, *q), 'f', decimals, 64))
	return nil
}

// overheadRows are the commands of the wrapper-overhead run, by hyperfine name.
var overheadRows = []struct{ name, label string }{
	{"guard", "guard run --lock L -- true"},
	{"flock", "flock -n L true"},
	{"floor", "bench/floor L true (gofrs/flock + x/sys only)"},
	{"floor+deps", "bench/floor + every package guard imports"},
	{"guard version", "guard version (start-up and exit only)"},
	{"true", "true (the job alone)"},
}

func hyperfineCmd(args []string) error {
	fs := flag.NewFlagSet("hyperfine", flag.ExitOnError)
	tsv := fs.String("tsv", "", "append key<TAB>value medians to `FILE`")
	fs.Parse(args)
	times := map[string][]float64{}
	for _, p := range fs.Args() {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var doc struct {
			Results []struct {
				Command string    `json:"command"`
				Times   []float64 `json:"times"`
			} `json:"results"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for _, r := range doc.Results {
			times[r.Command] = append(times[r.Command], r.Times...)
		}
	}
	med := map[string]float64{}
	for k, v := range times {
		med[k] = quantile(v, 0.5) * 1e3
	}
	for _, r := range overheadRows {
		if _, ok := times[r.name]; !ok {
			return fmt.Errorf("no hyperfine results for %q", r.name)
		}
	}
	fmt.Println("| command | median ms | p90 ms | above `true` ms | guard / this |")
	fmt.Println("|---|--:|--:|--:|--:|")
	for _, r := range overheadRows {
		m := med[r.name]
		fmt.Printf("| %s | %.3f | %.3f | %.3f | %.2fx |\n", r.label, m, quantile(times[r.name], 0.9)*1e3,
			m-med["true"], med["guard"]/m)
	}
	fmt.Printf("\n%d runs of each.\n", len(times["guard"]))
	if *tsv == "" {
		return nil
	}
	var lines []string
	for _, r := range overheadRows {
		key := strings.ReplaceAll(r.name, " ", "_")
		lines = append(lines,
			tsvfile.Line("overhead."+key+".median_ms", fmt.Sprintf("%.3f", med[r.name])),
			tsvfile.Line("overhead."+key+".n", len(times[r.name])))
	}
	return tsvfile.Append(*tsv, lines...)
}

// readTSV reads key<TAB>value lines; a later line wins.
func readTSV(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "\t"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m, sc.Err()
}
