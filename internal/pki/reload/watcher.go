package reload

import (
	"log"
	"sync"
	"time"
)

// DefaultInterval is how often, at most, files are checked for changes. A
// check is two stat calls, done on the handshake path only when due.
const DefaultInterval = time.Second

// watched holds the current value parsed from a set of files and reparses it
// when they change. Loading is synchronous on the caller that finds the check
// due; everybody else keeps using the current value meanwhile.
type watched[T any] struct {
	paths    []string
	parse    func() (T, error)
	interval time.Duration
	logf     func(format string, args ...any)
	what     string

	mu        sync.Mutex
	current   T
	stamps    []stamp
	lastCheck time.Time
	lastErr   string
}

func newWatched[T any](what string, parse func() (T, error), paths ...string) (*watched[T], error) {
	w := &watched[T]{paths: paths, parse: parse, interval: DefaultInterval, logf: log.Printf, what: what}
	w.stamps = stampsOf(paths...)
	v, err := parse()
	if err != nil {
		return nil, err
	}
	w.current, w.lastCheck = v, time.Now()
	return w, nil
}

// get returns the current value, reloading first when the files changed and
// the last check is older than the interval.
func (w *watched[T]) get() T {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if now.Sub(w.lastCheck) < w.interval {
		return w.current
	}
	w.lastCheck = now
	st := stampsOf(w.paths...)
	if sameStamps(st, w.stamps) {
		return w.current
	}
	v, err := w.parse()
	if err != nil {
		// Keep serving the last good value. The stamps are not advanced, so a
		// half-finished update (new key, old cert) is retried on the next
		// check; the reason is logged once per distinct error.
		if msg := err.Error(); msg != w.lastErr {
			w.lastErr = msg
			w.logf("reload: keeping the previous %s: %v", w.what, err)
		}
		return w.current
	}
	w.current, w.stamps, w.lastErr = v, st, ""
	w.logf("reload: loaded a new %s from %v", w.what, w.paths)
	return w.current
}

func (w *watched[T]) configure(interval time.Duration, logf func(string, ...any)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.interval = interval
	if logf != nil {
		w.logf = logf
	}
}
