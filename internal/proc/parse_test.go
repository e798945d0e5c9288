package proc

import (
	"strconv"
	"testing"
)

func TestParsePID(t *testing.T) {
	max := PIDMax()
	tests := []struct {
		in   string
		want int // 0: must be refused
	}{
		{"123", 123}, {"2", 2}, {strconv.Itoa(max - 1), max - 1},
		{"", 0}, {"0", 0}, {"1", 0}, {"-1", 0}, {"-5", 0}, {"+5", 0}, {" 5", 0}, {"5 ", 0},
		{"5\n", 0}, {"0x10", 0}, {"010", 0}, {"12a", 0}, {"4294967295", 0},
		{"99999999999999999999", 0}, {strconv.Itoa(max), 0}, {"5\t", 0}, {"5\x00", 0},
		{"\u0661\u0662", 0}, // Arabic-Indic digits
	}
	for _, tt := range tests {
		got, err := ParsePID(tt.in)
		if tt.want == 0 {
			if err == nil {
				t.Errorf("ParsePID(%q) = %d, want error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParsePID(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}
