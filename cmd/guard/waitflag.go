package main

import (
	"fmt"
	"time"
)

// forever is the --wait value that waits indefinitely.
const forever = time.Duration(-1)

// waitValue is --wait: a duration, 0 (do not wait) or "forever".
type waitValue struct{ d time.Duration }

func (w *waitValue) String() string {
	if w.d == forever {
		return "forever"
	}
	return w.d.String()
}

func (w *waitValue) Set(s string) error {
	if s == "forever" || s == "infinity" {
		w.d = forever
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return fmt.Errorf("want a duration such as 30s, 0 or forever")
	}
	w.d = d
	return nil
}

// durationFlag parses a non-negative duration.
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return "0s"
	}
	return f.d.String()
}

func (f durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return fmt.Errorf("want a non-negative duration such as 10s")
	}
	*f.d = d
	return nil
}
