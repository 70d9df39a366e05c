package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// newReaderID returns a short random reader id an operator can type.
func newReaderID() string { return "r" + newHomeID()[1:] }

// AddReader creates a reader token; see Store.
func (s *SQLite) AddReader(ctx context.Context, homeID string) (string, string, error) {
	id, token := newReaderID(), newToken()
	res, err := s.w.ExecContext(ctx, `INSERT INTO readers (id, home_id, token_hash, created_at)
		SELECT ?, id, ?, ? FROM homes WHERE id = ?`, id, hashToken(token), fmtTS(s.opts.Now()), homeID)
	if err != nil {
		return "", "", sqliteErr("add reader", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", "", fmt.Errorf("add reader: home %q: %w", homeID, ErrNotFound)
	}
	return id, token, nil
}

// ReaderByToken finds the home of a reader token; see Store.
func (s *SQLite) ReaderByToken(ctx context.Context, token string) (string, error) {
	var home string
	err := s.r.QueryRowContext(ctx, `SELECT home_id FROM readers WHERE token_hash = ?`, hashToken(token)).Scan(&home)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrUnauthorized
	}
	return home, sqliteErr("find reader by token", err)
}

// AddReader creates a reader token; see Store.
func (s *Postgres) AddReader(ctx context.Context, homeID string) (string, string, error) {
	id, token := newReaderID(), newToken()
	var n int64
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, `INSERT INTO readers (id, home_id, token_hash, created_at)
			SELECT $1, id, $2, $3 FROM homes WHERE id = $4`, id, hashToken(token), micro(s.opts.Now()), homeID)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return "", "", pgErr("add reader", err)
	}
	if n == 0 {
		return "", "", fmt.Errorf("add reader: home %q: %w", homeID, ErrNotFound)
	}
	return id, token, nil
}

// ReaderByToken finds the home of a reader token; see Store.
func (s *Postgres) ReaderByToken(ctx context.Context, token string) (string, error) {
	var home string
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT home_id FROM readers WHERE token_hash = $1`, hashToken(token)).Scan(&home)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrUnauthorized
	}
	return home, pgErr("find reader by token", err)
}
