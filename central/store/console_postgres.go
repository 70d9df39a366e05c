package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// addSession stores a login in one transaction with the sweep of expired
// sessions and the trim to MaxConsoleSessions (see sqliteLC.addSession).
func (l pgLC) addSession(ctx context.Context, id string, s ConsoleSession, now time.Time) error {
	h := hashToken(id)
	return l.db.tx(ctx, "add console session", pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM `+l.t.sessions+` WHERE expires_at <= $1`, micro(now)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+l.t.sessions+` (id_hash, csrf, expires_at, addr) VALUES ($1, $2, $3, $4)`,
			h, s.CSRF, micro(s.Expires), s.Addr); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM `+l.t.sessions+` WHERE id_hash <> $1 AND id_hash IN
			(SELECT id_hash FROM `+l.t.sessions+` WHERE id_hash <> $1 ORDER BY expires_at DESC OFFSET $2)`,
			h, MaxConsoleSessions-1)
		return err
	})
}

func (l pgLC) session(ctx context.Context, id string, now time.Time) (ConsoleSession, error) {
	var s ConsoleSession
	err := l.db.pool.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT csrf, expires_at, addr FROM `+l.t.sessions+` WHERE id_hash = $1`, hashToken(id)).
			Scan(&s.CSRF, &s.Expires, &s.Addr)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return ConsoleSession{}, ErrNotFound
	} else if err != nil {
		return ConsoleSession{}, pgErr("console session", err)
	}
	s.Expires = s.Expires.UTC()
	if !now.Before(s.Expires) {
		return ConsoleSession{}, ErrNotFound
	}
	return s, nil
}

func (l pgLC) endSession(ctx context.Context, id string) error {
	_, err := l.exec(ctx, "end console session", `DELETE FROM `+l.t.sessions+` WHERE id_hash = $1`, hashToken(id))
	return err
}

// queueCount queues, last in a batch's statements, the count of n
// messages stored for home in the hour of now. Last, because the row of
// a home's hour is locked until the commit: two batches of one home meet
// there only after everything else, so they cannot deadlock on it.
func (l pgLC) queueCount(b *pgx.Batch, home string, n int) {
	if home == "" || n == 0 {
		return
	}
	b.Queue(`INSERT INTO `+l.t.msgs+` (hour, home_id, messages) VALUES ($1, $2, $3)
		ON CONFLICT (hour, home_id) DO UPDATE SET messages = `+l.t.msgs+`.messages + excluded.messages`,
		messageHour(l.now()), home, int64(n))
}

func (l pgLC) homeMessages(ctx context.Context, since time.Time) (map[string]int64, error) {
	out := map[string]int64{}
	err := l.db.pool.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT home_id, sum(messages)::bigint FROM `+l.t.msgs+` WHERE hour >= $1 GROUP BY home_id`,
			messageHour(since))
		if err != nil {
			return err
		}
		var home string
		var n int64
		_, err = pgx.ForEachRow(rows, []any{&home, &n}, func() error { out[home] = n; return nil })
		return err
	})
	return out, pgErr("messages per home", err)
}

// pruneMessages deletes the counts of hours before messagesCut, at most
// EraseBatch rows a statement.
func (l pgLC) pruneMessages(ctx context.Context) error {
	_, err := l.eraseRows(ctx, l.t.msgs, `WITH d AS (DELETE FROM `+l.t.msgs+` WHERE (hour, home_id) IN
		(SELECT hour, home_id FROM `+l.t.msgs+` WHERE hour < $1 ORDER BY hour LIMIT `+batchText+`) RETURNING 1)
		SELECT count(*) FROM d`, messagesCut(l.now()))
	return err
}

// AddConsoleSession stores a console login; see ConsoleState.
func (s *Postgres) AddConsoleSession(ctx context.Context, id string, cs ConsoleSession, now time.Time) error {
	return s.lc().addSession(ctx, id, cs, now)
}

// ConsoleSession returns a live console session; see ConsoleState.
func (s *Postgres) ConsoleSession(ctx context.Context, id string, now time.Time) (ConsoleSession, error) {
	return s.lc().session(ctx, id, now)
}

// EndConsoleSession deletes a console session; see ConsoleState.
func (s *Postgres) EndConsoleSession(ctx context.Context, id string) error {
	return s.lc().endSession(ctx, id)
}

// HomeMessages returns the messages stored per home; see ConsoleState.
func (s *Postgres) HomeMessages(ctx context.Context, since time.Time) (map[string]int64, error) {
	return s.lc().homeMessages(ctx, since)
}

// AddConsoleSession stores a console login; see ConsoleState.
func (g *GuardianPostgres) AddConsoleSession(ctx context.Context, id string, cs ConsoleSession, now time.Time) error {
	return g.lc().addSession(ctx, id, cs, now)
}

// ConsoleSession returns a live console session; see ConsoleState.
func (g *GuardianPostgres) ConsoleSession(ctx context.Context, id string, now time.Time) (ConsoleSession, error) {
	return g.lc().session(ctx, id, now)
}

// EndConsoleSession deletes a console session; see ConsoleState.
func (g *GuardianPostgres) EndConsoleSession(ctx context.Context, id string) error {
	return g.lc().endSession(ctx, id)
}

// HomeMessages returns the messages stored per home; see ConsoleState.
func (g *GuardianPostgres) HomeMessages(ctx context.Context, since time.Time) (map[string]int64, error) {
	return g.lc().homeMessages(ctx, since)
}
