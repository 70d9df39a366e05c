package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"sync"
	"time"

	"github.com/guardianai/hearth/central/store"
)

// session is a logged-in browser. Its id is in an HttpOnly cookie; the
// admin token never is. csrf is put in every form and checked on POST.
type session struct {
	csrf    string
	expires time.Time
	addr    string // the client's address at login, for the audit log
}

// sessions are the logged-in browsers, kept in the database
// (store.ConsoleState: by the SHA-256 of their id, at most
// store.MaxConsoleSessions): behind a load balancer every replica of
// central accepts a login made on another, a logout on one ends it on
// all, and a restart logs nobody out.
type sessions struct {
	st  store.ConsoleState
	ttl time.Duration
}

func newSessions(st store.ConsoleState, ttl time.Duration) *sessions {
	return &sessions{st: st, ttl: ttl}
}

// create starts a session and returns its id.
func (s *sessions) create(ctx context.Context, addr string, now time.Time) (string, *session, error) {
	id := randomToken()
	ses := &session{csrf: randomToken(), expires: now.Add(s.ttl), addr: addr}
	err := s.st.AddConsoleSession(ctx, id, store.ConsoleSession{CSRF: ses.csrf, Expires: ses.expires, Addr: addr}, now)
	if err != nil {
		return "", nil, err
	}
	return id, ses, nil
}

// get returns the live session of id, or nil when there is none (no
// cookie, or one of a session unknown, ended or expired).
func (s *sessions) get(ctx context.Context, id string, now time.Time) (*session, error) {
	if id == "" {
		return nil, nil
	}
	cs, err := s.st.ConsoleSession(ctx, id, now)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return &session{csrf: cs.CSRF, expires: cs.Expires, addr: cs.Addr}, nil
}

// end ends the session of id on every replica.
func (s *sessions) end(ctx context.Context, id string) error {
	return s.st.EndConsoleSession(ctx, id)
}

// randomToken is 32 random bytes, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("BUG: crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// sameSecret compares two secrets in constant time.
func sameSecret(a, b string) bool {
	return a != "" && len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// throttle refuses an address that failed too often: limit failures in
// window. The map is bounded: past maxThrottled addresses the oldest
// window is forgotten.
type throttle struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	by     map[string]*strikes
}

type strikes struct {
	n     int
	start time.Time
}

const maxThrottled = 4096

func newThrottle(limit int, window time.Duration) *throttle {
	return &throttle{limit: limit, window: window, by: map[string]*strikes{}}
}

// blocked reports whether addr must wait, and how long.
func (t *throttle) blocked(addr string, now time.Time) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.by[addr]
	if s == nil || now.Sub(s.start) >= t.window {
		return 0, false
	}
	return s.start.Add(t.window).Sub(now), s.n >= t.limit
}

// fail counts a failure of addr.
func (t *throttle) fail(addr string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.by[addr]
	if s == nil || now.Sub(s.start) >= t.window {
		if s == nil && len(t.by) >= maxThrottled {
			t.forgetOldest()
		}
		s = &strikes{start: now}
		t.by[addr] = s
	}
	s.n++
}

func (t *throttle) forgetOldest() {
	var oldest string
	for a, s := range t.by {
		if oldest == "" || s.start.Before(t.by[oldest].start) {
			oldest = a
		}
	}
	delete(t.by, oldest)
}
