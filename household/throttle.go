package household

import (
	"sync"
	"time"
)

// loginThrottle refuses an address that got the password wrong too often
// within a window, so the page's password cannot be guessed at line rate.
// It keeps at most maxAddrs addresses; when full, a new window starts.
type loginThrottle struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex
	start time.Time
	fails map[string]int
}

const maxAddrs = 4096

func newLoginThrottle(limit int, window time.Duration) *loginThrottle {
	return &loginThrottle{limit: limit, window: window, now: time.Now, fails: map[string]int{}}
}

// roll starts a new window when the current one is over or too large.
func (l *loginThrottle) roll() {
	if now := l.now(); now.Sub(l.start) >= l.window || len(l.fails) >= maxAddrs {
		l.start, l.fails = now, map[string]int{}
	}
}

func (l *loginThrottle) allowed(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll()
	return l.fails[addr] < l.limit
}

func (l *loginThrottle) failed(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll()
	l.fails[addr]++
}
