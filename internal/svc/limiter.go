package svc

import (
	"sync/atomic"
	"time"
)

// LogLimiter lets a repeated log line through at most once per interval
// (retry logs must not flood a router's disk) and counts the ones it held
// back. The zero value is ready; it is safe for concurrent use.
type LogLimiter struct {
	last       atomic.Int64
	suppressed atomic.Int64
}

// Allow reports whether to log now and how many lines were held back since
// the last one let through.
func (r *LogLimiter) Allow(interval time.Duration) (bool, int64) {
	now := time.Now().UnixNano()
	last := r.last.Load()
	if now-last >= int64(interval) && r.last.CompareAndSwap(last, now) {
		return true, r.suppressed.Swap(0)
	}
	r.suppressed.Add(1)
	return false, 0
}
