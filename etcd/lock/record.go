package etcdlock

import (
	"time"

	"github.com/guardkit/guard/instance"
)

// newRecord is the record a contender puts: Acquired is when it started
// waiting, and Token is 0, until it takes the lock.
func newRecord(o Options) (*instance.Record, error) {
	rec, err := instance.Self()
	if err != nil {
		return nil, err
	}
	rec.Name, rec.Command, rec.Acquired = o.Name, instance.QuoteCommand(o.Command), time.Now()
	return &rec, nil
}
