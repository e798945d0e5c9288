// Package tsv appends the key<TAB>value lines through which the benchmark
// programs hand their results to scripts/bench.sh and bench/report.
package tsv

import (
	"fmt"
	"os"
)

// Append adds lines (each "key\tvalue") to the file at path, creating it if
// missing.
func Append(path string, lines ...string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	for _, l := range lines {
		fmt.Fprintln(f, l)
	}
	return f.Close()
}

// Line formats one key<TAB>value line.
func Line(key string, value any) string { return fmt.Sprintf("%s\t%v", key, value) }
