package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// session is a logged-in browser. Its id is in an HttpOnly cookie; the
// admin token never is. csrf is put in every form and checked on POST.
type session struct {
	csrf    string
	expires time.Time
	addr    string // the client's address at login, for the audit log
}

// maxSessions bounds the sessions kept; logging in past it drops the one
// that expires first.
const maxSessions = 256

// sessions are the logged-in browsers of this replica, in memory: a
// restart logs everyone out, which is fine for an operator's console.
type sessions struct {
	mu  sync.Mutex
	ttl time.Duration
	by  map[string]*session
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, by: map[string]*session{}}
}

// create starts a session and returns its id.
func (s *sessions) create(addr string, now time.Time) (string, *session) {
	id := randomToken()
	ses := &session{csrf: randomToken(), expires: now.Add(s.ttl), addr: addr}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	if len(s.by) >= maxSessions {
		s.dropFirstExpiring()
	}
	s.by[id] = ses
	return id, ses
}

// get returns the live session of id, or nil.
func (s *sessions) get(id string, now time.Time) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ses := s.by[id]
	if ses == nil || !now.Before(ses.expires) {
		delete(s.by, id)
		return nil
	}
	return ses
}

func (s *sessions) end(id string) {
	s.mu.Lock()
	delete(s.by, id)
	s.mu.Unlock()
}

func (s *sessions) sweep(now time.Time) {
	for id, ses := range s.by {
		if !now.Before(ses.expires) {
			delete(s.by, id)
		}
	}
}

func (s *sessions) dropFirstExpiring() {
	var first string
	for id, ses := range s.by {
		if first == "" || ses.expires.Before(s.by[first].expires) {
			first = id
		}
	}
	delete(s.by, first)
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
