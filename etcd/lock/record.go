package etcdlock

import (
	"fmt"
	"os"
	"sync"
	"time"

	"guard/instance"
	"guard/internal/proc"
)

// identity is what a record says about this process. It does not change,
// so it is read once.
var identity = sync.OnceValues(func() (instance.Record, error) {
	st, err := proc.ReadStat(os.Getpid())
	if err != nil {
		return instance.Record{}, fmt.Errorf("read own start time: %w", err)
	}
	boot, err := proc.BootID()
	if err != nil {
		return instance.Record{}, fmt.Errorf("read boot id: %w", err)
	}
	ns, err := proc.PIDNamespace(0)
	if err != nil {
		return instance.Record{}, err
	}
	host, _ := os.Hostname()
	return instance.Record{PID: os.Getpid(), StartTicks: st.StartTicks, BootID: boot, PIDNS: ns, Host: host}, nil
})

// newRecord is the record a contender puts: Acquired is when it started
// waiting, and Token is 0, until it takes the lock.
func newRecord(o Options) (*instance.Record, error) {
	rec, err := identity()
	if err != nil {
		return nil, err
	}
	rec.Name, rec.Command, rec.Acquired = o.Name, instance.QuoteCommand(o.Command), time.Now()
	return &rec, nil
}
