package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// addSession stores a login in one transaction with the sweep of expired
// sessions and the trim to MaxConsoleSessions, so the table never holds
// more than that many rows and the sweep is bounded by it.
func (l sqliteLC) addSession(ctx context.Context, id string, s ConsoleSession, now time.Time) error {
	h := hashToken(id)
	return l.tx(ctx, "add console session", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+l.t.sessions+` WHERE expires_at <= ?`, l.fmt(now)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+l.t.sessions+` (id_hash, csrf, expires_at, addr) VALUES (?, ?, ?, ?)`,
			h, s.CSRF, l.fmt(s.Expires), s.Addr); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM `+l.t.sessions+` WHERE id_hash <> ?1 AND id_hash IN
			(SELECT id_hash FROM `+l.t.sessions+` WHERE id_hash <> ?1 ORDER BY expires_at DESC LIMIT -1 OFFSET ?2)`,
			h, MaxConsoleSessions-1)
		return err
	})
}

func (l sqliteLC) session(ctx context.Context, id string, now time.Time) (ConsoleSession, error) {
	var s ConsoleSession
	var exp string
	err := l.db.r.QueryRowContext(ctx, `SELECT csrf, expires_at, addr FROM `+l.t.sessions+` WHERE id_hash = ?`, hashToken(id)).
		Scan(&s.CSRF, &exp, &s.Addr)
	if errors.Is(err, sql.ErrNoRows) {
		return ConsoleSession{}, ErrNotFound
	} else if err != nil {
		return ConsoleSession{}, sqliteErr("console session", err)
	}
	if s.Expires, err = l.parse(exp); err != nil {
		return ConsoleSession{}, sqliteErr("console session", err)
	}
	if !now.Before(s.Expires) {
		return ConsoleSession{}, ErrNotFound
	}
	return s, nil
}

func (l sqliteLC) endSession(ctx context.Context, id string) error {
	return l.tx(ctx, "end console session", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM `+l.t.sessions+` WHERE id_hash = ?`, hashToken(id))
		return err
	})
}

// countMessages adds n messages stored for home to the hour of now, in
// the batch's transaction.
func (l sqliteLC) countMessages(ctx context.Context, tx *sql.Tx, home string, n int) error {
	if home == "" || n == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO `+l.t.msgs+` (hour, home_id, messages) VALUES (?, ?, ?)
		ON CONFLICT (hour, home_id) DO UPDATE SET messages = `+l.t.msgs+`.messages + excluded.messages`,
		l.fmt(messageHour(l.now())), home, n)
	return err
}

func (l sqliteLC) homeMessages(ctx context.Context, since time.Time) (map[string]int64, error) {
	rows, err := l.db.r.QueryContext(ctx, `SELECT home_id, sum(messages) FROM `+l.t.msgs+` WHERE hour >= ? GROUP BY home_id`,
		l.fmt(messageHour(since)))
	if err != nil {
		return nil, sqliteErr("messages per home", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var home string
		var n int64
		if err := rows.Scan(&home, &n); err != nil {
			return nil, sqliteErr("messages per home", err)
		}
		out[home] = n
	}
	return out, sqliteErr("messages per home", rows.Err())
}

// pruneMessages deletes the counts of hours before messagesCut, at most
// EraseBatch rows a transaction.
func (l sqliteLC) pruneMessages(ctx context.Context) error {
	_, err := l.eraseRows(ctx, l.t.msgs, `DELETE FROM `+l.t.msgs+` WHERE (hour, home_id) IN
		(SELECT hour, home_id FROM `+l.t.msgs+` WHERE hour < ? ORDER BY hour LIMIT `+batchText+`)`,
		l.fmt(messagesCut(l.now())))
	return err
}

// AddConsoleSession stores a console login; see ConsoleState.
func (s *SQLite) AddConsoleSession(ctx context.Context, id string, cs ConsoleSession, now time.Time) error {
	return s.lc().addSession(ctx, id, cs, now)
}

// ConsoleSession returns a live console session; see ConsoleState.
func (s *SQLite) ConsoleSession(ctx context.Context, id string, now time.Time) (ConsoleSession, error) {
	return s.lc().session(ctx, id, now)
}

// EndConsoleSession deletes a console session; see ConsoleState.
func (s *SQLite) EndConsoleSession(ctx context.Context, id string) error {
	return s.lc().endSession(ctx, id)
}

// HomeMessages returns the messages stored per home; see ConsoleState.
func (s *SQLite) HomeMessages(ctx context.Context, since time.Time) (map[string]int64, error) {
	return s.lc().homeMessages(ctx, since)
}

// AddConsoleSession stores a console login; see ConsoleState.
func (g *GuardianSQLite) AddConsoleSession(ctx context.Context, id string, cs ConsoleSession, now time.Time) error {
	return g.lc().addSession(ctx, id, cs, now)
}

// ConsoleSession returns a live console session; see ConsoleState.
func (g *GuardianSQLite) ConsoleSession(ctx context.Context, id string, now time.Time) (ConsoleSession, error) {
	return g.lc().session(ctx, id, now)
}

// EndConsoleSession deletes a console session; see ConsoleState.
func (g *GuardianSQLite) EndConsoleSession(ctx context.Context, id string) error {
	return g.lc().endSession(ctx, id)
}

// HomeMessages returns the messages stored per home; see ConsoleState.
func (g *GuardianSQLite) HomeMessages(ctx context.Context, since time.Time) (map[string]int64, error) {
	return g.lc().homeMessages(ctx, since)
}
