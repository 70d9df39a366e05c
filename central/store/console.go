package store

import (
	"context"
	"time"
)

// ConsoleState is what the operator's console keeps between requests: its
// logins and the messages stored per home. It lives in the database, so
// behind a load balancer every replica of central accepts a login made on
// another, a logout on one ends the session on all, and every replica
// shows the same counts, which survive restarts.
type ConsoleState interface {
	// AddConsoleSession stores a login under the SHA-256 of id (the
	// database never holds the id, so a dump of it gives no live
	// session). It deletes the expired sessions at now and, beyond
	// MaxConsoleSessions, those that expire first (never this one).
	AddConsoleSession(ctx context.Context, id string, s ConsoleSession, now time.Time) error
	// ConsoleSession returns the session of id while it lasts at now;
	// ErrNotFound for an unknown, ended or expired one.
	ConsoleSession(ctx context.Context, id string, now time.Time) (ConsoleSession, error)
	// EndConsoleSession deletes the session of id; ending an unknown one
	// is no error (a second logout, or one past the expiry).
	EndConsoleSession(ctx context.Context, id string) error
	// HomeMessages returns, by home, the messages Apply stored for it (in
	// an edge's batch: home not "") from the start of since's hour on,
	// counted per hour (UTC); a home without any is absent. The counts are
	// kept two days (HomeMessagesKept): Prune deletes older hours.
	HomeMessages(ctx context.Context, since time.Time) (map[string]int64, error)
}

// ConsoleSession is a logged-in browser of the console.
type ConsoleSession struct {
	CSRF    string // put in every form and checked on POST
	Expires time.Time
	Addr    string // the client's address at login, for the audit log
}

// MaxConsoleSessions bounds the sessions kept: a login past it drops the
// one that expires first. Across replicas logging in at the same instant
// the bound may be passed by those logins until the next one.
const MaxConsoleSessions = 256

// HomeMessagesKept is how long the per-hour message counts are kept: the
// console shows the last 24 hours; a day more covers a prune that runs late.
const HomeMessagesKept = 48 * time.Hour

// messageHour is the hour a batch stored at now is counted in.
func messageHour(now time.Time) time.Time {
	return now.UTC().Truncate(time.Hour)
}

// storedCount counts the messages of a batch that were stored.
func storedCount(results []Result) int {
	n := 0
	for _, r := range results {
		if r.Status == StatusOK {
			n++
		}
	}
	return n
}

// messagesCut is the first hour Prune keeps of the message counts at now.
func messagesCut(now time.Time) time.Time {
	return messageHour(now.Add(-HomeMessagesKept))
}
