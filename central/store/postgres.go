package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/guardianai/hearth"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Postgres is the production store. Any number of hearth-central replicas
// may share one database: batches lock rows in key order, and migrations
// take an advisory lock.
type Postgres struct {
	pool *pgPool
	opts Options
}

var _ Store = (*Postgres)(nil)

// pgMigrationLock is the advisory lock key that serialises migrations of
// replicas starting together.
const pgMigrationLock int64 = 0x6865617274 // "heart"

// OpenPostgres connects to the database at url (a postgres:// URL or a
// key=value DSN as pgx parses them) and applies pending migrations. An
// unreachable server wraps ErrUnavailable.
func OpenPostgres(ctx context.Context, url string, opts Options) (*Postgres, error) {
	opts = opts.withDefaults()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w: %w", ErrInvalid, err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	s := &Postgres{pool: newPGPoolOpts(cfg, opts), opts: opts}
	if err := s.migrate(ctx); err != nil {
		s.pool.close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	return s, nil
}

func (s *Postgres) migrate(ctx context.Context) error {
	return s.tx(ctx, "migrate", pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, pgMigrationLock); err != nil {
			return err
		}
		_, err := pgApplyMigrations(ctx, tx, "schema_migrations", "postgres", micro(s.opts.Now()))
		return err
	})
}

// pgApplyMigrations applies the migrations of dir that table does not
// record yet, recording each at now, and returns the version the database
// was at before (0: a fresh one). It runs in the caller's transaction,
// which holds the migration lock.
func pgApplyMigrations(ctx context.Context, tx pgx.Tx, table, dir string, now time.Time) (int, error) {
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (
			version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)`); err != nil {
		return 0, err
	}
	var current int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+table).Scan(&current); err != nil {
		return 0, err
	}
	todo, err := pending(dir, current)
	if err != nil {
		return 0, err
	}
	for _, m := range todo {
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return 0, fmt.Errorf("%s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+table+` (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.version, m.name, now); err != nil {
			return 0, err
		}
	}
	return current, nil
}

// tx runs fn in a transaction on a pooled connection and commits it.
func (s *Postgres) tx(ctx context.Context, op string, o pgx.TxOptions, fn func(pgx.Tx) error) error {
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		tx, err := c.BeginTx(ctx, o)
		if err != nil {
			return err
		}
		defer tx.Rollback(context.Background())
		if err := fn(tx); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
	return pgErr(op, err)
}

// Close closes the idle connections; the Store must not be used after.
func (s *Postgres) Close() error {
	s.pool.close()
	return nil
}

// Ping checks that the server answers.
func (s *Postgres) Ping(ctx context.Context) error {
	return pgErr("ping postgres", s.pool.with(ctx, func(c *pgx.Conn) error { return c.Ping(ctx) }))
}

// The upserts, one per table, over parallel arrays (one per column).
const (
	pgUpsertDays = `INSERT INTO screen_time (child, date, total_seconds, received_at)
SELECT c, d::date, n, r FROM unnest($1::text[], $2::text[], $3::int8[], $4::timestamptz[]) AS u(c, d, n, r)
ON CONFLICT (child, date) DO UPDATE SET total_seconds = excluded.total_seconds, received_at = excluded.received_at
WHERE (excluded.received_at, excluded.total_seconds) > (screen_time.received_at, screen_time.total_seconds)`

	pgUpsertHours = `INSERT INTO app_screen_time (child, date, app, hour, seconds, received_at)
SELECT c, d::date, a, h, n, r FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::timestamptz[]) AS u(c, d, a, h, n, r)
ON CONFLICT (child, date, app, hour) DO UPDATE SET seconds = excluded.seconds, received_at = excluded.received_at
WHERE (excluded.received_at, excluded.seconds) > (app_screen_time.received_at, app_screen_time.seconds)`

	pgUpsertLocs = `INSERT INTO locations (child, ts, latitude, longitude, received_at)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::float8[], $4::float8[], $5::timestamptz[])
ON CONFLICT (child, ts) DO UPDATE SET latitude = excluded.latitude, longitude = excluded.longitude, received_at = excluded.received_at
WHERE (excluded.received_at, excluded.latitude, excluded.longitude) > (locations.received_at, locations.latitude, locations.longitude)`

	pgUpsertSites = `INSERT INTO site_access (child, ts, url, accessed, received_at)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::bool[], $5::timestamptz[])
ON CONFLICT (child, ts, url) DO UPDATE SET accessed = excluded.accessed, received_at = excluded.received_at
WHERE (excluded.received_at, excluded.accessed) > (site_access.received_at, site_access.accessed)`
)

// Apply upserts msgs in one transaction; see Store.
func (s *Postgres) Apply(ctx context.Context, home string, msgs []hearth.Message) ([]Result, error) {
	if len(msgs) == 0 {
		return []Result{}, nil
	}
	p := parse(msgs, s.opts)
	var results []Result
	err := s.tx(ctx, "apply batch", pgx.TxOptions{}, func(tx pgx.Tx) error {
		owned, err := pgOwners(ctx, tx, distinctChildren(msgs))
		if err != nil {
			return fmt.Errorf("look up children: %w", err)
		}
		var r rows
		results, r = p.plan(home, msgs, owned)
		b := pgUpserts(r)
		s.lc().queueCount(b, home, storedCount(results))
		if b.Len() == 0 {
			return nil
		}
		br := tx.SendBatch(ctx, b)
		for range b.Len() {
			if _, err := br.Exec(); err != nil {
				br.Close()
				return err
			}
		}
		return br.Close()
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

func pgOwners(ctx context.Context, tx pgx.Tx, children []string) (owners, error) {
	rows, err := tx.Query(ctx, `SELECT hash, home_id FROM children WHERE hash = ANY($1::text[])`, children)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	owned := make(owners, len(children))
	for rows.Next() {
		var child string
		var home *string
		if err := rows.Scan(&child, &home); err != nil {
			return nil, err
		}
		owned[child] = ownerOf(deref(home), home != nil)
	}
	return owned, rows.Err()
}

// pgUpserts queues one statement per table with rows.
func pgUpserts(r rows) *pgx.Batch {
	b := &pgx.Batch{}
	if n := len(r.days); n > 0 {
		c, d, t, rc := make([]string, n), make([]string, n), make([]int64, n), make([]time.Time, n)
		for i, x := range r.days {
			c[i], d[i], t[i], rc[i] = x.child, x.date, x.total, x.recv
		}
		b.Queue(pgUpsertDays, c, d, t, rc)
	}
	if n := len(r.hours); n > 0 {
		c, d, a, h, t, rc := make([]string, n), make([]string, n), make([]string, n), make([]int64, n), make([]int64, n), make([]time.Time, n)
		for i, x := range r.hours {
			c[i], d[i], a[i], h[i], t[i], rc[i] = x.child, x.date, x.app, int64(x.hour), x.secs, x.recv
		}
		b.Queue(pgUpsertHours, c, d, a, h, t, rc)
	}
	if n := len(r.locs); n > 0 {
		c, ts, lat, lon, rc := make([]string, n), make([]time.Time, n), make([]float64, n), make([]float64, n), make([]time.Time, n)
		for i, x := range r.locs {
			c[i], ts[i], lat[i], lon[i], rc[i] = x.child, x.ts, x.lat, x.lon, x.recv
		}
		b.Queue(pgUpsertLocs, c, ts, lat, lon, rc)
	}
	if n := len(r.sites); n > 0 {
		c, ts, u, acc, rc := make([]string, n), make([]time.Time, n), make([]string, n), make([]bool, n), make([]time.Time, n)
		for i, x := range r.sites {
			c[i], ts[i], u[i], acc[i], rc[i] = x.child, x.ts, x.url, x.accessed, x.recv
		}
		b.Queue(pgUpsertSites, c, ts, u, acc, rc)
	}
	return b
}

// AddHome creates a home; see Store.
func (s *Postgres) AddHome(ctx context.Context, name string) (string, string, error) {
	if err := checkHomeName(name); err != nil {
		return "", "", err
	}
	id, token := newHomeID(), newToken()
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `INSERT INTO homes (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)`,
			id, name, hashToken(token), micro(s.opts.Now()))
		return err
	})
	if err != nil {
		return "", "", pgErr("add home", err)
	}
	return id, token, nil
}

const pgHomeCols = `h.id, h.name, h.created_at, h.clock_offset_ms, h.last_seen,
	(SELECT count(*) FROM children AS c WHERE c.home_id = h.id)`

func scanPGHome(row interface{ Scan(...any) error }) (Home, error) {
	var h Home
	var offsetMS, children int64
	var seen *time.Time
	if err := row.Scan(&h.ID, &h.Name, &h.CreatedAt, &offsetMS, &seen, &children); err != nil {
		return Home{}, err
	}
	h.CreatedAt = h.CreatedAt.UTC()
	if seen != nil {
		h.LastSeen = seen.UTC()
	}
	h.ClockOffset = time.Duration(offsetMS) * time.Millisecond
	h.Children = int(children)
	return h, nil
}

// ListHomes returns every home; see Store.
func (s *Postgres) ListHomes(ctx context.Context) ([]Home, error) {
	homes := []Home{}
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT `+pgHomeCols+` FROM homes AS h ORDER BY h.created_at, h.id`)
		if err != nil {
			return err
		}
		homes, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Home, error) { return scanPGHome(r) })
		return err
	})
	return homes, pgErr("list homes", err)
}

// HomeByToken finds the home of a token; see Store.
func (s *Postgres) HomeByToken(ctx context.Context, token string) (Home, error) {
	var h Home
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		var err error
		h, err = scanPGHome(c.QueryRow(ctx, `SELECT `+pgHomeCols+` FROM homes AS h WHERE h.token_hash = $1`, hashToken(token)))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Home{}, ErrUnauthorized
	}
	return h, pgErr("find home by token", err)
}

// RecordClockOffset stores a home's clock offset; see Store.
func (s *Postgres) RecordClockOffset(ctx context.Context, homeID string, offset time.Duration, at time.Time) error {
	var n int64
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, `UPDATE homes SET clock_offset_ms = $1, last_seen = $2 WHERE id = $3`,
			offset.Milliseconds(), micro(at), homeID)
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

// AddChild adds a child to a home; see Store.
func (s *Postgres) AddChild(ctx context.Context, homeID, hash string) (string, error) {
	if hash == "" {
		hash = newChildHash()
	} else if err := checkChildHash(hash); err != nil {
		return "", err
	}
	err := s.tx(ctx, "add child", pgx.TxOptions{}, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM homes WHERE id = $1 FOR SHARE`, homeID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("home %q: %w", homeID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO children (hash, home_id, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (hash) DO UPDATE SET home_id = excluded.home_id WHERE children.home_id IS NULL`,
			hash, homeID, micro(s.opts.Now()))
		if err == nil && tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: the child hash is taken", ErrExists)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	return hash, nil
}

// Children lists a home's children; see Store.
func (s *Postgres) Children(ctx context.Context, homeID string) ([]string, error) {
	return pgHomeChildren(ctx, s.pool, `SELECT c.hash FROM homes AS h LEFT JOIN children AS c ON c.home_id = h.id
			WHERE h.id = $1 ORDER BY c.hash COLLATE "C"`, homeID)
}

// pgHomeChildren runs query, which selects the child hashes of home homeID
// left-joined to the home (one NULL row for a home without children, no
// row for an unknown home), for either schema.
func pgHomeChildren(ctx context.Context, pool *pgPool, query, homeID string) ([]string, error) {
	var out []*string
	err := pool.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, query, homeID)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[*string])
		return err
	})
	if err != nil {
		return nil, pgErr("list children", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("list children: home %q: %w", homeID, ErrNotFound)
	}
	hashes := []string{}
	for _, h := range out {
		if h != nil {
			hashes = append(hashes, *h)
		}
	}
	return hashes, nil
}

// ChildHome returns a child's home; see Store.
func (s *Postgres) ChildHome(ctx context.Context, hash string) (string, bool, error) {
	homes, _, err := s.ChildHomes(ctx, hash)
	return childHome(homes, err)
}

// ChildHomes returns a child's home, none for a detached one; see Store.
func (s *Postgres) ChildHomes(ctx context.Context, hash string) ([]string, bool, error) {
	if checkChildHash(hash) != nil {
		return nil, false, nil
	}
	var home *string
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT home_id FROM children WHERE hash = $1`, hash).Scan(&home)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, pgErr("look up child", err)
	}
	return homeList(deref(home), home != nil), true, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Stats counts rows per table; see Store.
func (s *Postgres) Stats(ctx context.Context) (map[string]int64, error) {
	var h, c, st, ast, l, sa int64
	err := s.pool.with(ctx, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, statsSQL).Scan(&h, &c, &st, &ast, &l, &sa)
	})
	if err != nil {
		return nil, pgErr("stats", err)
	}
	return statsMap(h, c, st, ast, l, sa), nil
}

var pgReadTx = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}

// ScreenTime reads a child's days; see Store.
func (s *Postgres) ScreenTime(ctx context.Context, child, from, to string) ([]ScreenTimeDay, error) {
	return s.screenTime(ctx, `SELECT date, total_seconds, received_at FROM screen_time
			WHERE child = $1 AND date BETWEEN $2::text::date AND $3::text::date ORDER BY date`,
		`SELECT date, app, hour, seconds FROM app_screen_time
			WHERE child = $1 AND date BETWEEN $2::text::date AND $3::text::date ORDER BY date, app COLLATE "C", hour`, child, from, to)
}

// screenTime reads a child's days with dayQuery (date, total, received
// time) and their hours with hourQuery (date, app, hour, seconds), both
// taking child, from and to, in one read transaction: the same for either
// schema.
func (s *Postgres) screenTime(ctx context.Context, dayQuery, hourQuery, child, from, to string) ([]ScreenTimeDay, error) {
	if err := parseRange(from, to); err != nil {
		return nil, err
	}
	var days dayCollector
	err := s.tx(ctx, "read screen time", pgReadTx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, dayQuery, child, from, to)
		if err != nil {
			return err
		}
		var d, recv time.Time
		var total int64
		_, err = pgx.ForEachRow(rows, []any{&d, &total, &recv}, func() error {
			days.day(d.Format(hearth.DateLayout), total, recv)
			return nil
		})
		if err != nil {
			return err
		}
		rows, err = tx.Query(ctx, hourQuery, child, from, to)
		if err != nil {
			return err
		}
		var app string
		var hour int
		var secs int64
		_, err = pgx.ForEachRow(rows, []any{&d, &app, &hour, &secs}, func() error {
			days.hour(d.Format(hearth.DateLayout), app, hour, secs)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return days.done(), nil
}

// Locations reads a child's fixes; see Store.
func (s *Postgres) Locations(ctx context.Context, child string, from, to time.Time) ([]hearth.Location, error) {
	return pgLocations(ctx, s.pool, `SELECT ts, latitude, longitude FROM locations
		WHERE child = $1 AND ts >= $2 AND ts <= $3 ORDER BY ts`, child, from, to)
}

// SiteAccess reads a child's visits; see Store.
func (s *Postgres) SiteAccess(ctx context.Context, child string, from, to time.Time) ([]hearth.SiteVisit, error) {
	return pgVisits(ctx, s.pool, `SELECT ts, url, accessed FROM site_access
		WHERE child = $1 AND ts >= $2 AND ts <= $3 ORDER BY ts, url COLLATE "C"`, child, from, to)
}

// pgErr wraps err with the operation and marks failures that may pass when
// retried (connection lost, server shutting down or overloaded, deadlock,
// serialization failure, read-only after a failover) with ErrUnavailable.
func pgErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) ||
		errors.Is(err, ErrExists) || errors.Is(err, ErrSchemaTooNew) || errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, err)
	}
	if pgTransient(err) {
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func pgTransient(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code[:2] {
		case "08", "53", "57", "58": // connection, resources, operator intervention, system
			return true
		}
		switch pe.Code {
		case "40001", "40P01", "25006", "55P03": // serialization, deadlock, read-only, lock timeout
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
