package cli

import (
	"testing"
	"time"

	"github.com/guardkit/guard/instance"
)

// Tests written against mutants of this package that the other tests let
// live (the second mutation pass).

// lastSuccessLease is a lease whose record says the job last succeeded at
// last.
type lastSuccessLease struct {
	checkedLease
	last time.Time
}

func (l *lastSuccessLease) Record() instance.Record {
	return instance.Record{Token: 7, LastSuccess: l.last}
}

// --min-interval skips a run only when the record's last success is recent:
// one more than a minute in the future (the clock went back, or another
// host's clock runs ahead) is not believed, or the job would never run
// again until that time came.
func TestMinIntervalDisbelievesAFutureSuccess(t *testing.T) {
	o := &runOpts{}
	o.c = New(Config{})
	o.minInterval = time.Hour
	for _, tc := range []struct {
		name  string
		last  time.Time
		skips bool
	}{
		{"never", time.Time{}, false},
		{"a minute ago", time.Now().Add(-time.Minute), true},
		{"two hours ago", time.Now().Add(-2 * time.Hour), false},
		{"in ten seconds (skew)", time.Now().Add(10 * time.Second), true},
		{"in a day", time.Now().Add(24 * time.Hour), false},
	} {
		if got := o.notDue(&lastSuccessLease{last: tc.last}, "x.lock"); got != tc.skips {
			t.Errorf("%s: notDue = %v, want %v", tc.name, got, tc.skips)
		}
	}
}
