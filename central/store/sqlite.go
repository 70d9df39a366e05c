package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/guardianai/hearth"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite is the embedded store: one database file in WAL mode, one writer
// connection (SQLite has one writer anyway; a single connection turns lock
// contention into a queue) and a pool of readers.
type SQLite struct {
	w, r *sql.DB
	opts Options
	path string        // the database file, for messages about it
	turn chan struct{} // held by the batch that has (or waits for) the writer
}

var _ Store = (*SQLite)(nil)

// Pragmas of every connection, in the DSN because they are per connection.
// synchronous(FULL): central acks a batch after the commit and the edge then
// deletes its copy, so a commit must survive a power cut, not just a crash.
const (
	sqliteWriterParams = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate"
	sqliteReaderParams = "_pragma=busy_timeout(5000)&_pragma=query_only(1)"
)

// tsLayout stores times as fixed-width UTC text, so text order is time order.
const tsLayout = "2006-01-02T15:04:05.000000Z"

// OpenSQLite opens (creating when missing) the SQLite database at path and
// applies pending migrations.
func OpenSQLite(ctx context.Context, path string, opts Options) (*SQLite, error) {
	opts = opts.withDefaults()
	s, err := openSQLiteConns(ctx, path, opts)
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return s, nil
}

// openSQLiteConns opens the writer and the readers of the database at path,
// creating its directory when missing, and migrates nothing.
func openSQLiteConns(ctx context.Context, path string, opts Options) (*SQLite, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open sqlite: %w: path %q must be non-empty and hold no ? or #", ErrInvalid, path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	w, err := sql.Open("sqlite", path+"?"+sqliteWriterParams)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	r, err := sql.Open("sqlite", path+"?"+sqliteReaderParams)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	r.SetMaxOpenConns(opts.MaxConns)
	r.SetMaxIdleConns(opts.MaxConns)
	return &SQLite{w: w, r: r, opts: opts, path: path, turn: make(chan struct{}, 1)}, nil
}

// migrate applies the pending migrations in one transaction, with foreign
// keys off: SQLite changes a column's constraints by rebuilding the table
// (0005_detach.sql), and with them on, dropping the old table would
// cascade-delete every row that references it. foreign_key_check proves
// before the commit that nothing was left dangling.
func (s *SQLite) migrate(ctx context.Context) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return sqliteErr("migrate", err)
	}
	defer conn.Close()
	// The pragma is a no-op inside a transaction: it is set around it.
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return sqliteErr("migrate", err)
	}
	err = s.migrateOn(ctx, conn)
	if _, on := conn.ExecContext(ctx, `PRAGMA foreign_keys = ON`); on != nil && err == nil {
		// The caller closes the store on an error: no write runs unchecked.
		err = sqliteErr("migrate", on)
	}
	return err
}

func (s *SQLite) migrateOn(ctx context.Context, conn *sql.Conn) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return sqliteErr("migrate", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		return sqliteErr("migrate", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return sqliteErr("migrate", err)
	}
	todo, err := pending("sqlite", current)
	if err != nil {
		return err
	}
	for _, m := range todo {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("migrate %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, fmtTS(s.opts.Now())); err != nil {
			return sqliteErr("migrate", err)
		}
	}
	if err := sqliteForeignKeyCheck(ctx, tx); err != nil {
		return err
	}
	return sqliteErr("migrate", tx.Commit())
}

// sqliteForeignKeyCheck fails when a row references a missing one.
func sqliteForeignKeyCheck(ctx context.Context, tx *sql.Tx) error {
	var table, parent string
	var rowid sql.NullInt64
	var fk int
	err := tx.QueryRowContext(ctx, `PRAGMA foreign_key_check`).Scan(&table, &rowid, &parent, &fk)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return sqliteErr("migrate: foreign key check", err)
	}
	return fmt.Errorf("migrate: a row of %s references a missing row of %s; nothing was changed", table, parent)
}

// Close closes both pools.
func (s *SQLite) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// Ping checks the writer connection.
func (s *SQLite) Ping(ctx context.Context) error {
	return sqliteErr("ping sqlite", s.w.PingContext(ctx))
}

// Apply upserts msgs in one transaction; see Store.
func (s *SQLite) Apply(ctx context.Context, home string, msgs []hearth.Message) ([]Result, error) {
	if len(msgs) == 0 {
		return []Result{}, nil
	}
	p := parse(msgs, s.opts)
	done, err := s.writerTurn(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, sqliteErr("apply batch", err)
	}
	defer tx.Rollback()
	owned, err := sqliteOwners(ctx, tx, distinctChildren(msgs))
	if err != nil {
		return nil, sqliteErr("apply batch: look up children", err)
	}
	results, r := p.plan(home, msgs, owned)
	if err := s.upsertRows(ctx, tx, r); err != nil {
		return nil, sqliteErr("apply batch", err)
	}
	if err := s.lc().countMessages(ctx, tx, home, storedCount(results)); err != nil {
		return nil, sqliteErr("apply batch: count messages", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, sqliteErr("apply batch: commit", err)
	}
	return results, nil
}

// writerTurn waits for this batch's turn at the single writer, at most
// opts.WriterWait (when set): batches queue here, not in database/sql,
// so a batch that would wait longer is shed with ErrBusy instead. done
// ends the turn.
func (s *SQLite) writerTurn(ctx context.Context) (done func(), err error) {
	var timeout <-chan time.Time
	if s.opts.WriterWait > 0 {
		t := time.NewTimer(s.opts.WriterWait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case s.turn <- struct{}{}:
		return func() { <-s.turn }, nil
	case <-timeout:
		return nil, fmt.Errorf("%w (waited %s for SQLite's writer)", ErrBusy, s.opts.WriterWait)
	case <-ctx.Done():
		return nil, sqliteErr("apply batch", ctx.Err())
	}
}

// AddHome creates a home; see Store.
func (s *SQLite) AddHome(ctx context.Context, name string) (string, string, error) {
	if err := checkHomeName(name); err != nil {
		return "", "", err
	}
	id, token := newHomeID(), newToken()
	_, err := s.w.ExecContext(ctx, `INSERT INTO homes (id, name, token_hash, created_at) VALUES (?, ?, ?, ?)`,
		id, name, hashToken(token), fmtTS(s.opts.Now()))
	if err != nil {
		return "", "", sqliteErr("add home", err)
	}
	return id, token, nil
}

const sqliteHomeCols = `h.id, h.name, h.created_at, h.clock_offset_ms, h.last_seen,
	(SELECT count(*) FROM children AS c WHERE c.home_id = h.id)`

// ListHomes returns every home; see Store.
func (s *SQLite) ListHomes(ctx context.Context) ([]Home, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+sqliteHomeCols+` FROM homes AS h ORDER BY h.created_at, h.id`)
	if err != nil {
		return nil, sqliteErr("list homes", err)
	}
	defer rows.Close()
	homes := []Home{}
	for rows.Next() {
		h, err := scanSQLiteHome(rows)
		if err != nil {
			return nil, sqliteErr("list homes", err)
		}
		homes = append(homes, h)
	}
	return homes, sqliteErr("list homes", rows.Err())
}

// HomeByToken finds the home of a token; see Store.
func (s *SQLite) HomeByToken(ctx context.Context, token string) (Home, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+sqliteHomeCols+` FROM homes AS h WHERE h.token_hash = ?`, hashToken(token))
	h, err := scanSQLiteHome(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Home{}, ErrUnauthorized
	}
	return h, sqliteErr("find home by token", err)
}

func scanSQLiteHome(row interface{ Scan(...any) error }) (Home, error) {
	return scanSQLiteHomeTimes(row, parseTS)
}

// scanSQLiteHomeTimes reads a home's columns (sqliteHomeCols or its GuardianAI
// twin), its times in the text form parse reads.
func scanSQLiteHomeTimes(row interface{ Scan(...any) error }, parse func(string) (time.Time, error)) (Home, error) {
	var h Home
	var created string
	var offsetMS int64
	var seen sql.NullString
	if err := row.Scan(&h.ID, &h.Name, &created, &offsetMS, &seen, &h.Children); err != nil {
		return Home{}, err
	}
	var err error
	if h.CreatedAt, err = parse(created); err != nil {
		return Home{}, err
	}
	if seen.Valid {
		if h.LastSeen, err = parse(seen.String); err != nil {
			return Home{}, err
		}
	}
	h.ClockOffset = time.Duration(offsetMS) * time.Millisecond
	return h, nil
}

// RecordClockOffset stores a home's clock offset; see Store.
func (s *SQLite) RecordClockOffset(ctx context.Context, homeID string, offset time.Duration, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE homes SET clock_offset_ms = ?, last_seen = ? WHERE id = ?`,
		offset.Milliseconds(), fmtTS(at), homeID)
	if err != nil {
		return sqliteErr("record clock offset", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("record clock offset: home %q: %w", homeID, ErrNotFound)
	}
	return nil
}

// AddChild adds a child to a home; see Store.
func (s *SQLite) AddChild(ctx context.Context, homeID, hash string) (string, error) {
	if hash == "" {
		hash = newChildHash()
	} else if err := checkChildHash(hash); err != nil {
		return "", err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return "", sqliteErr("add child", err)
	}
	defer tx.Rollback()
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM homes WHERE id = ?`, homeID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("add child: home %q: %w", homeID, ErrNotFound)
	}
	if err != nil {
		return "", sqliteErr("add child", err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO children (hash, home_id, created_at) VALUES (?, ?, ?)
		ON CONFLICT (hash) DO UPDATE SET home_id = excluded.home_id WHERE children.home_id IS NULL`,
		hash, homeID, fmtTS(s.opts.Now()))
	if err != nil {
		return "", sqliteErr("add child", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", fmt.Errorf("add child: %w: the child hash is taken", ErrExists)
	}
	return hash, sqliteErr("add child", tx.Commit())
}

// Children lists a home's children; see Store.
func (s *SQLite) Children(ctx context.Context, homeID string) ([]string, error) {
	return sqliteHomeChildren(ctx, s.r, `SELECT c.hash FROM homes AS h LEFT JOIN children AS c ON c.home_id = h.id
		WHERE h.id = ? ORDER BY c.hash`, homeID)
}

// sqliteHomeChildren runs query, which selects the child hashes of home
// homeID left-joined to the home (one NULL row for a home without
// children, no row for an unknown home), for either schema.
func sqliteHomeChildren(ctx context.Context, db *sql.DB, query, homeID string) ([]string, error) {
	rows, err := db.QueryContext(ctx, query, homeID)
	if err != nil {
		return nil, sqliteErr("list children", err)
	}
	defer rows.Close()
	found := false
	out := []string{}
	for rows.Next() {
		found = true
		var h sql.NullString
		if err := rows.Scan(&h); err != nil {
			return nil, sqliteErr("list children", err)
		}
		if h.Valid {
			out = append(out, h.String)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, sqliteErr("list children", err)
	}
	if !found {
		return nil, fmt.Errorf("list children: home %q: %w", homeID, ErrNotFound)
	}
	return out, nil
}

// ChildHome returns a child's home; see Store.
func (s *SQLite) ChildHome(ctx context.Context, hash string) (string, bool, error) {
	homes, _, err := s.ChildHomes(ctx, hash)
	return childHome(homes, err)
}

// ChildHomes returns a child's home, none for a detached one; see Store.
func (s *SQLite) ChildHomes(ctx context.Context, hash string) ([]string, bool, error) {
	var home sql.NullString
	err := s.r.QueryRowContext(ctx, `SELECT home_id FROM children WHERE hash = ?`, hash).Scan(&home)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, sqliteErr("look up child", err)
	}
	return homeList(home.String, home.Valid), true, nil
}

// Stats counts rows per table; see Store.
func (s *SQLite) Stats(ctx context.Context) (map[string]int64, error) {
	var h, c, st, ast, l, sa int64
	err := s.r.QueryRowContext(ctx, statsSQL).Scan(&h, &c, &st, &ast, &l, &sa)
	if err != nil {
		return nil, sqliteErr("stats", err)
	}
	return statsMap(h, c, st, ast, l, sa), nil
}

const statsSQL = `SELECT (SELECT count(*) FROM homes), (SELECT count(*) FROM children),
	(SELECT count(*) FROM screen_time), (SELECT count(*) FROM app_screen_time),
	(SELECT count(*) FROM locations), (SELECT count(*) FROM site_access)`

func statsMap(h, c, st, ast, l, sa int64) map[string]int64 {
	return map[string]int64{"homes": h, "children": c, "screen_time": st,
		"app_screen_time": ast, "locations": l, "site_access": sa}
}

// ScreenTime reads a child's days; see Store.
func (s *SQLite) ScreenTime(ctx context.Context, child, from, to string) ([]ScreenTimeDay, error) {
	return sqliteScreenTime(ctx, s.r, parseTS,
		`SELECT date, total_seconds, received_at FROM screen_time
		WHERE child = ? AND date BETWEEN ? AND ? ORDER BY date`,
		`SELECT date, app, hour, seconds FROM app_screen_time
		WHERE child = ? AND date BETWEEN ? AND ? ORDER BY date, app, hour`, child, from, to)
}

// sqliteScreenTime reads a child's days with dayQuery (date, total,
// received time as parse reads it) and their hours with hourQuery (date,
// app, hour, seconds), both taking child, from and to, in one read
// transaction: the same for either schema.
func sqliteScreenTime(ctx context.Context, db *sql.DB, parse func(string) (time.Time, error), dayQuery, hourQuery, child, from, to string) ([]ScreenTimeDay, error) {
	if err := parseRange(from, to); err != nil {
		return nil, err
	}
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, sqliteErr("read screen time", err)
	}
	defer tx.Rollback()
	var days dayCollector
	rows, err := tx.QueryContext(ctx, dayQuery, child, from, to)
	if err != nil {
		return nil, sqliteErr("read screen time", err)
	}
	for rows.Next() {
		var d, recv string
		var total int64
		if err = rows.Scan(&d, &total, &recv); err != nil {
			break
		}
		var t time.Time
		if t, err = parse(recv); err != nil {
			break
		}
		days.day(d, total, t)
	}
	if err = errors.Join(err, rows.Err(), rows.Close()); err != nil {
		return nil, sqliteErr("read screen time", err)
	}
	rows, err = tx.QueryContext(ctx, hourQuery, child, from, to)
	if err != nil {
		return nil, sqliteErr("read screen time", err)
	}
	for rows.Next() {
		var d, app string
		var hour int
		var secs int64
		if err = rows.Scan(&d, &app, &hour, &secs); err != nil {
			break
		}
		days.hour(d, app, hour, secs)
	}
	if err = errors.Join(err, rows.Err(), rows.Close()); err != nil {
		return nil, sqliteErr("read screen time", err)
	}
	return days.done(), nil
}

// Locations reads a child's fixes; see Store.
func (s *SQLite) Locations(ctx context.Context, child string, from, to time.Time) ([]hearth.Location, error) {
	return sqliteLocPage(ctx, s.r, `SELECT ts, latitude, longitude FROM locations
		WHERE child = ? AND ts >= ? AND ts <= ? ORDER BY ts`, parseTS, child, fmtTS(ceilMicro(from)), fmtTS(to))
}

// SiteAccess reads a child's visits; see Store.
func (s *SQLite) SiteAccess(ctx context.Context, child string, from, to time.Time) ([]hearth.SiteVisit, error) {
	return sqliteSitePage(ctx, s.r, `SELECT ts, url, accessed FROM site_access
		WHERE child = ? AND ts >= ? AND ts <= ? ORDER BY ts, url`, parseTS, child, fmtTS(ceilMicro(from)), fmtTS(to))
}

// fmtTS formats t for a TEXT time column, clamped to years 1-9999 so the
// width stays fixed.
func fmtTS(t time.Time) string {
	t = t.UTC()
	switch {
	case t.Year() < 1:
		t = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	case t.Year() > 9999:
		t = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
	}
	return t.Format(tsLayout)
}

func parseTS(s string) (time.Time, error) {
	return time.Parse(tsLayout, s)
}

// ceilMicro rounds t up to whole microseconds: the first stored time not
// before t.
func ceilMicro(t time.Time) time.Time {
	m := micro(t)
	if m.Before(t) {
		m = m.Add(time.Microsecond)
	}
	return m
}

// sqliteErr wraps err with the operation and marks failures that may pass
// when retried (busy, I/O, disk full, closed) with ErrUnavailable.
func sqliteErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) {
		return err
	}
	if sqliteTransient(err) {
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func sqliteTransient(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_READONLY,
			sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL:
			return true
		}
		return false
	}
	return errors.Is(err, sql.ErrConnDone) || strings.Contains(err.Error(), "database is closed")
}

// jsonArray builds the JSON array of row arrays the SQLite upserts read.
// A nil result means no rows.
type jsonArray struct {
	buf  []byte
	open bool // inside a row
}

func (b *jsonArray) sep() {
	if n := len(b.buf); n > 0 && b.buf[n-1] != '[' {
		b.buf = append(b.buf, ',')
	}
}

// row starts a new row array.
func (b *jsonArray) row() *jsonArray {
	if b.open {
		b.buf = append(b.buf, ']')
	}
	if len(b.buf) == 0 {
		b.buf = append(b.buf, '[')
	}
	b.sep()
	b.buf = append(b.buf, '[')
	b.open = true
	return b
}

func (b *jsonArray) str(s string) *jsonArray {
	if len(b.buf) == 0 {
		b.buf = append(b.buf, '[')
	}
	b.sep()
	b.buf = appendJSONString(b.buf, s)
	return b
}

func (b *jsonArray) int(n int64) *jsonArray {
	b.sep()
	b.buf = strconv.AppendInt(b.buf, n, 10)
	return b
}

// float writes f in the shortest form that parses back to the same bits.
func (b *jsonArray) float(f float64) *jsonArray {
	b.sep()
	b.buf = strconv.AppendFloat(b.buf, f, 'g', -1, 64)
	return b
}

func (b *jsonArray) ts(t time.Time) *jsonArray {
	b.sep()
	b.buf = append(b.buf, '"')
	b.buf = append(b.buf, fmtTS(t)...)
	b.buf = append(b.buf, '"')
	return b
}

func (b *jsonArray) done() []byte {
	if len(b.buf) == 0 {
		return nil
	}
	if b.open {
		b.buf = append(b.buf, ']')
	}
	return append(b.buf, ']')
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 cannot occur:
// the payloads were decoded by encoding/json, which replaces it.
func appendJSONString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			buf = append(buf, '\\', c)
		case c < 0x20:
			buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			buf = append(buf, c)
		}
	}
	return append(buf, '"')
}
