package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/guardianai/hearth"
	"github.com/jackc/pgx/v5"
)

// The parts of a PostgreSQL store that differ between the two schemas
// only in their SQL (table names, joins): each runs the query it is given.
// GuardianPostgres uses them; Postgres can (its methods hold the same code
// with its own queries).

// pgAddHome runs query (an insert of $1 id, $2 name, $3 token hash, $4
// created) for a new home, and returns its id and token.
func pgAddHome(ctx context.Context, pool *pgPool, query, name string, now time.Time) (string, string, error) {
	if err := checkHomeName(name); err != nil {
		return "", "", err
	}
	id, token := newHomeID(), newToken()
	err := pool.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, query, id, name, hashToken(token), micro(now))
		return err
	})
	if err != nil {
		return "", "", pgErr("add home", err)
	}
	return id, token, nil
}

// pgAddReader runs query (an insert of $1 id, $2 token hash, $3 created
// for the home $4, if it exists) for a new reader token, and returns its
// id and token.
func pgAddReader(ctx context.Context, pool *pgPool, query, homeID string, now time.Time) (string, string, error) {
	id, token := newReaderID(), newToken()
	var n int64
	err := pool.with(ctx, func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, query, id, hashToken(token), micro(now), homeID)
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

// pgReaderByToken runs query (the home of the reader whose token hash is
// $1) for token.
func pgReaderByToken(ctx context.Context, pool *pgPool, query, token string) (string, error) {
	var home string
	err := pool.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, query, hashToken(token)).Scan(&home)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrUnauthorized
	}
	return home, pgErr("find reader by token", err)
}

// pgRecordClockOffset runs query (an update of home $3 to clock offset $1
// in ms and last seen $2).
func pgRecordClockOffset(ctx context.Context, pool *pgPool, query, homeID string, offset time.Duration, at time.Time) error {
	var n int64
	err := pool.with(ctx, func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, query, offset.Milliseconds(), micro(at), homeID)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return pgErr("record clock offset", err)
	}
	if n == 0 {
		return fmt.Errorf("record clock offset: home %q: %w", homeID, ErrNotFound)
	}
	return nil
}

// pgLocations runs query (a child's fixes: ts, latitude, longitude, with
// $1 the child and $2, $3 the inclusive bounds) for child from from to to.
func pgLocations(ctx context.Context, pool *pgPool, query, child string, from, to time.Time) ([]hearth.Location, error) {
	return pgLocPage(ctx, pool, query, child, ceilMicro(from), micro(to))
}

// pgVisits runs query (a child's visits: ts, url, accessed; arguments as
// in pgLocations).
func pgVisits(ctx context.Context, pool *pgPool, query, child string, from, to time.Time) ([]hearth.SiteVisit, error) {
	return pgSitePage(ctx, pool, query, child, ceilMicro(from), micro(to))
}

// pgEachRow runs query with args on a pooled connection, scanning each
// row into dest and calling fn after each.
func pgEachRow(ctx context.Context, pool *pgPool, query string, args, dest []any, fn func()) error {
	return pool.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		_, err = pgx.ForEachRow(rows, dest, func() error { fn(); return nil })
		return err
	})
}
