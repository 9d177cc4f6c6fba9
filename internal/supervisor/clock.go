package supervisor

import "time"

// clock is the pool's source of time; tests replace it to run backoff and
// crash windows deterministically.
type clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) timer
}

// timer is a pending AfterFunc.
type timer interface{ Stop() bool }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) timer { return time.AfterFunc(d, f) }

// stopTimer stops t if set and clears it.
func stopTimer(t *timer) {
	if *t != nil {
		(*t).Stop()
		*t = nil
	}
}
