package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// movingClock is a test store's clock that a test moves.
type movingClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *movingClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *movingClock) set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// replicas opens two stores on one fresh database of e, as two replicas
// of central would, both on clock, with the fixture's homes and children
// made through the first.
func replicas(t *testing.T, e engine, clock *movingClock) (*fixture, Store) {
	t.Helper()
	opts := Options{Now: clock.Now, Schema: e.schema}
	dsn := e.dsn(t)
	f := fixtureOn(t, open(t, dsn, opts))
	return f, open(t, dsn, opts)
}

// forEveryEngineReplicas runs fn per engine of both schemas with two
// stores on one database.
func forEveryEngineReplicas(t *testing.T, fn func(t *testing.T, f *fixture, other Store, clock *movingClock)) {
	for _, e := range append(append([]engine{}, engines...), gaEngines...) {
		t.Run(e.name, func(t *testing.T) {
			e.require(t)
			clock := &movingClock{now: testNow}
			f, other := replicas(t, e, clock)
			fn(t, f, other, clock)
		})
	}
}

func sessionTable(s Store) string {
	if isGuardian(s) {
		return guardianTables.sessions
	}
	return hearthTables.sessions
}

func msgsTable(s Store) string {
	if isGuardian(s) {
		return guardianTables.msgs
	}
	return hearthTables.msgs
}

// Ensure that a console session stored by one replica is found by
// another, lasts until its expiry, is kept only as the SHA-256 of its id,
// and that ending it on one ends it on both.
func TestConsoleState_Sessions(t *testing.T) {
	forEveryEngineReplicas(t, func(t *testing.T, f *fixture, other Store, clock *movingClock) {
		ctx := context.Background()
		now := clock.Now()
		id := "session-id-" + randomURLSafe(32)
		want := ConsoleSession{CSRF: "csrf-" + randomURLSafe(32), Expires: now.Add(12 * time.Hour), Addr: "192.0.2.7"}
		if err := f.s.AddConsoleSession(ctx, id, want, now); err != nil {
			t.Fatal(err)
		}
		for i, s := range []Store{f.s, other} {
			got, err := s.ConsoleSession(ctx, id, now.Add(time.Minute))
			if err != nil || got.CSRF != want.CSRF || got.Addr != want.Addr || !got.Expires.Equal(want.Expires) {
				t.Fatalf("replica %d: %+v %v, want %+v", i+1, got, err, want)
			}
		}
		sum := sha256.Sum256([]byte(id))
		rows := rawQuerier(t, f.s)(`SELECT id_hash, csrf, expires_at, addr FROM ` + sessionTable(f.s))
		if len(rows) != 1 || rows[0][0] != hex.EncodeToString(sum[:]) {
			t.Fatalf("session rows %q, want one keyed by the SHA-256 of the id", rows)
		}
		if strings.Contains(fmt.Sprint(rows), id) {
			t.Fatalf("the database holds the session id: %q", rows)
		}
		if _, err := other.ConsoleSession(ctx, id, want.Expires); !errors.Is(err, ErrNotFound) {
			t.Fatalf("session at its expiry: %v, want ErrNotFound", err)
		}
		if _, err := other.ConsoleSession(ctx, "another-"+id, now); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown session: %v, want ErrNotFound", err)
		}
		if err := other.EndConsoleSession(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.ConsoleSession(ctx, id, now); !errors.Is(err, ErrNotFound) {
			t.Fatalf("session ended on the other replica: %v, want ErrNotFound", err)
		}
		if err := f.s.EndConsoleSession(ctx, id); err != nil {
			t.Fatalf("ending an ended session: %v, want nil", err)
		}
	})
}

// Ensure that a login sweeps the expired sessions and keeps at most
// MaxConsoleSessions, dropping those that expire first and never the new
// one, even when all expire at the same time.
func TestConsoleState_SessionsBounded(t *testing.T) {
	forEveryEngineReplicas(t, func(t *testing.T, f *fixture, other Store, clock *movingClock) {
		ctx := context.Background()
		now := clock.Now()
		add := func(s Store, id string, exp, at time.Time) {
			t.Helper()
			if err := s.AddConsoleSession(ctx, id, ConsoleSession{CSRF: "c", Expires: exp, Addr: "a"}, at); err != nil {
				t.Fatal(err)
			}
		}
		count := func() int {
			t.Helper()
			rows := rawQuerier(t, f.s)(`SELECT count(*) FROM ` + sessionTable(f.s))
			return int(atoi(rows[0][0]))
		}
		add(f.s, "expired", now.Add(time.Minute), now)
		later := now.Add(time.Hour)
		for i := range MaxConsoleSessions + 2 {
			add([]Store{f.s, other}[i%2], fmt.Sprint("s", i), later.Add(12*time.Hour+time.Duration(i)*time.Second), later)
		}
		if n := count(); n != MaxConsoleSessions {
			t.Fatalf("%d sessions kept, want %d", n, MaxConsoleSessions)
		}
		for id, live := range map[string]bool{"expired": false, "s0": false, "s1": false, "s2": true, fmt.Sprint("s", MaxConsoleSessions+1): true} {
			_, err := other.ConsoleSession(ctx, id, now)
			if live != (err == nil) {
				t.Errorf("session %s: %v, want live %v", id, err, live)
			}
		}
		last := later.Add(12*time.Hour + time.Duration(MaxConsoleSessions+1)*time.Second)
		add(f.s, "same-expiry", last, later)
		if _, err := other.ConsoleSession(ctx, "same-expiry", now); err != nil || count() != MaxConsoleSessions {
			t.Fatalf("new session expiring with others: %v, %d kept; want it kept, %d in all", err, count(), MaxConsoleSessions)
		}
	})
}

// Ensure that the messages stored by a batch with a home are counted for
// that home in the hour they were stored (not those rejected, nor those
// of the device listener), that both replicas read the same sums, that a
// sum covers the hours asked for, and that the prune drops the counts
// older than HomeMessagesKept.
func TestConsoleState_HomeMessages(t *testing.T) {
	forEveryEngineReplicas(t, func(t *testing.T, f *fixture, other Store, clock *movingClock) {
		ctx := context.Background()
		day := testNow.Format("2006-01-02")
		res := apply(t, f.s, f.homeA, locMsg(f.a1, at(-time.Hour), 1, 2, at(0)), stMsg(f.a2, day, 60, nil, at(0)),
			locMsg(f.b1, at(-time.Hour), 1, 2, at(0)))
		if res[2].Code != CodeForeignChild {
			t.Fatalf("b1 in home A's batch: %+v", res[2])
		}
		applyOK(t, other, f.homeB, locMsg(f.b1, at(-2*time.Hour), 1, 2, at(0)))
		applyOK(t, other, "", locMsg(f.a1, at(-3*time.Hour), 1, 2, at(0)))
		since := testNow.Add(-23 * time.Hour)
		want := map[string]int64{f.homeA: 2, f.homeB: 1}
		for i, s := range []Store{f.s, other} {
			if got, err := s.HomeMessages(ctx, since); err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("replica %d: %v %v, want %v", i+1, got, err, want)
			}
		}
		clock.set(testNow.Add(time.Hour + 30*time.Minute))
		applyOK(t, other, f.homeA, locMsg(f.a1, at(-4*time.Hour), 1, 2, at(0)))
		if got, _ := f.s.HomeMessages(ctx, since); got[f.homeA] != 3 {
			t.Fatalf("home A after a batch an hour later: %d, want 3", got[f.homeA])
		}
		// A day later the first hour is out of the 24 h from 13:00 on.
		if got, _ := f.s.HomeMessages(ctx, testNow.Add(time.Hour)); fmt.Sprint(got) != fmt.Sprint(map[string]int64{f.homeA: 1}) {
			t.Fatalf("from the next hour on: %v, want home A 1", got)
		}
		clock.set(testNow.Add(HomeMessagesKept + time.Hour + 30*time.Minute))
		if _, err := other.Prune(ctx, clock.Now().Add(-30*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.s.HomeMessages(ctx, time.Time{}); fmt.Sprint(got) != fmt.Sprint(map[string]int64{f.homeA: 1}) {
			t.Fatalf("after the prune: %v, want home A's later hour (1) only", got)
		}
		if rows := rawQuerier(t, f.s)(`SELECT count(*) FROM ` + msgsTable(f.s)); rows[0][0] != "1" {
			t.Fatalf("%s rows after the prune: %s, want 1", msgsTable(f.s), rows[0][0])
		}
	})
}
