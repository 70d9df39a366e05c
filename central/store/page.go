package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/guardianai/hearth"
)

// Page selects one page of a read in key order: the rows after a cursor
// (the key of the last row of the previous page), at most Limit of them.
// Keys are unique (a child's location per microsecond, its visit per
// microsecond and URL), so pages neither repeat nor skip rows, whatever is
// written meanwhile.
type Page struct {
	AfterTS  time.Time // the last row's time; zero for the first page
	AfterURL string    // site access: the last row's URL
	Limit    int       // at least 1
}

// Paged is the paged form of a Store's range reads (the read API's).
type Paged interface {
	// LocationsPage returns a child's fixes with from <= timestamp <= to
	// after p's cursor, oldest first, at most p.Limit.
	LocationsPage(ctx context.Context, child string, from, to time.Time, p Page) ([]hearth.Location, error)
	// SiteAccessPage returns a child's visits with from <= timestamp <= to
	// after p's cursor, in (timestamp, URL) order, at most p.Limit.
	SiteAccessPage(ctx context.Context, child string, from, to time.Time, p Page) ([]hearth.SiteVisit, error)
}

// locFrom is the first time of a locations page: a child has one fix per
// microsecond, so the page after AfterTS starts a microsecond later.
func (p Page) locFrom(from time.Time) time.Time {
	from = ceilMicro(from)
	if next := micro(p.AfterTS).Add(time.Microsecond); !p.AfterTS.IsZero() && next.After(from) {
		return next
	}
	return from
}

// siteAfter is the cursor of a site access page as a time: before from
// (every row qualifies) for the first page.
func (p Page) siteAfter(from time.Time) time.Time {
	if p.AfterTS.IsZero() {
		return ceilMicro(from).Add(-time.Microsecond)
	}
	return micro(p.AfterTS)
}

// SQLite (hearth's tables and GuardianAI's keys): time as fixed-layout text.

func (s *SQLite) LocationsPage(ctx context.Context, child string, from, to time.Time, p Page) ([]hearth.Location, error) {
	return sqliteLocPage(ctx, s.r, `SELECT ts, latitude, longitude FROM locations
		WHERE child = ? AND ts >= ? AND ts <= ? ORDER BY ts LIMIT ?`, parseTS,
		child, fmtTS(p.locFrom(from)), fmtTS(to), p.Limit)
}

func (s *SQLite) SiteAccessPage(ctx context.Context, child string, from, to time.Time, p Page) ([]hearth.SiteVisit, error) {
	a := fmtTS(p.siteAfter(from))
	return sqliteSitePage(ctx, s.r, `SELECT ts, url, accessed FROM site_access
		WHERE child = ? AND ts >= ? AND ts <= ? AND (ts > ? OR (ts = ? AND url > ?)) ORDER BY ts, url LIMIT ?`, parseTS,
		child, fmtTS(ceilMicro(from)), fmtTS(to), a, a, p.AfterURL, p.Limit)
}

func (g *GuardianSQLite) LocationsPage(ctx context.Context, child string, from, to time.Time, p Page) ([]hearth.Location, error) {
	return sqliteLocPage(ctx, g.db.r, `SELECT k.ts, l.latitude, l.longitude
		FROM hearth_locationhistory AS k JOIN accounts_child AS c ON c.id = k.child_id
		JOIN backend_locationhistory AS l ON l.id = k.row_id
		WHERE c.child_hash = ? AND k.ts >= ? AND k.ts <= ? ORDER BY k.ts LIMIT ?`, parseDjango,
		child, fmtDjango(p.locFrom(from)), fmtDjango(to), p.Limit)
}

func (g *GuardianSQLite) SiteAccessPage(ctx context.Context, child string, from, to time.Time, p Page) ([]hearth.SiteVisit, error) {
	a := fmtDjango(p.siteAfter(from))
	return sqliteSitePage(ctx, g.db.r, `SELECT k.ts, s.url, s.accessed
		FROM hearth_siteaccesslog AS k JOIN accounts_child AS c ON c.id = k.child_id
		JOIN backend_siteaccesslog AS s ON s.id = k.row_id
		WHERE c.child_hash = ? AND k.ts >= ? AND k.ts <= ? AND (k.ts > ? OR (k.ts = ? AND k.url > ?))
		ORDER BY k.ts, k.url LIMIT ?`, parseDjango,
		child, fmtDjango(ceilMicro(from)), fmtDjango(to), a, a, p.AfterURL, p.Limit)
}

// sqliteLocPage runs query, which selects a child's fixes (ts as text,
// latitude, longitude), with args; parse reads the time text.
func sqliteLocPage(ctx context.Context, db *sql.DB, query string, parse func(string) (time.Time, error), args ...any) ([]hearth.Location, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, sqliteErr("read locations", err)
	}
	defer rows.Close()
	out := []hearth.Location{}
	for rows.Next() {
		var l hearth.Location
		var ts string
		if err := rows.Scan(&ts, &l.Latitude, &l.Longitude); err != nil {
			return nil, sqliteErr("read locations", err)
		}
		if l.Timestamp, err = parse(ts); err != nil {
			return nil, sqliteErr("read locations", err)
		}
		out = append(out, l)
	}
	return out, sqliteErr("read locations", rows.Err())
}

// sqliteSitePage runs query, which selects a child's visits (ts as text,
// url, accessed), with args; parse reads the time text.
func sqliteSitePage(ctx context.Context, db *sql.DB, query string, parse func(string) (time.Time, error), args ...any) ([]hearth.SiteVisit, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, sqliteErr("read site access", err)
	}
	defer rows.Close()
	out := []hearth.SiteVisit{}
	for rows.Next() {
		var v hearth.SiteVisit
		var ts string
		if err := rows.Scan(&ts, &v.URL, &v.Accessed); err != nil {
			return nil, sqliteErr("read site access", err)
		}
		if v.Timestamp, err = parse(ts); err != nil {
			return nil, sqliteErr("read site access", err)
		}
		out = append(out, v)
	}
	return out, sqliteErr("read site access", rows.Err())
}

// PostgreSQL (hearth's tables and GuardianAI's keys): timestamptz.

func (s *Postgres) LocationsPage(ctx context.Context, child string, from, to time.Time, p Page) ([]hearth.Location, error) {
	return pgLocPage(ctx, s.pool, `SELECT ts, latitude, longitude FROM locations
		WHERE child = $1 AND ts >= $2 AND ts <= $3 ORDER BY ts LIMIT $4`, child, p.locFrom(from), micro(to), p.Limit)
}

func (s *Postgres) SiteAccessPage(ctx context.Context, child string, from, to time.Time, p Page) ([]hearth.SiteVisit, error) {
	return pgSitePage(ctx, s.pool, `SELECT ts, url, accessed FROM site_access
		WHERE child = $1 AND ts >= $2 AND ts <= $3 AND (ts > $4 OR (ts = $4 AND url > $5)) ORDER BY ts, url LIMIT $6`,
		child, ceilMicro(from), micro(to), p.siteAfter(from), p.AfterURL, p.Limit)
}

// The GuardianAI schema orders URLs byte-wise (COLLATE "C"), whatever the
// database's collation, so its cursor compares them so too.

func (g *GuardianPostgres) LocationsPage(ctx context.Context, child string, from, to time.Time, p Page) ([]hearth.Location, error) {
	return pgLocPage(ctx, g.db.pool, `SELECT k.ts, l.latitude, l.longitude
		FROM hearth_locationhistory AS k JOIN accounts_child AS c ON c.id = k.child_id
		JOIN backend_locationhistory AS l ON l.id = k.row_id
		WHERE c.child_hash = $1 AND k.ts >= $2 AND k.ts <= $3 ORDER BY k.ts LIMIT $4`, child, p.locFrom(from), micro(to), p.Limit)
}

func (g *GuardianPostgres) SiteAccessPage(ctx context.Context, child string, from, to time.Time, p Page) ([]hearth.SiteVisit, error) {
	return pgSitePage(ctx, g.db.pool, `SELECT k.ts, s.url, s.accessed
		FROM hearth_siteaccesslog AS k JOIN accounts_child AS c ON c.id = k.child_id
		JOIN backend_siteaccesslog AS s ON s.id = k.row_id
		WHERE c.child_hash = $1 AND k.ts >= $2 AND k.ts <= $3
		AND (k.ts > $4 OR (k.ts = $4 AND k.url COLLATE "C" > $5)) ORDER BY k.ts, k.url COLLATE "C" LIMIT $6`,
		child, ceilMicro(from), micro(to), p.siteAfter(from), p.AfterURL, p.Limit)
}

// pgLocPage runs query, which selects a child's fixes (ts, latitude,
// longitude), with args.
func pgLocPage(ctx context.Context, pool *pgPool, query string, args ...any) ([]hearth.Location, error) {
	out := []hearth.Location{}
	var l hearth.Location
	err := pgEachRow(ctx, pool, query, args, []any{&l.Timestamp, &l.Latitude, &l.Longitude}, func() {
		l.Timestamp = l.Timestamp.UTC()
		out = append(out, l)
	})
	if err != nil {
		return nil, pgErr("read locations", err)
	}
	return out, nil
}

// pgSitePage runs query, which selects a child's visits (ts, url,
// accessed), with args.
func pgSitePage(ctx context.Context, pool *pgPool, query string, args ...any) ([]hearth.SiteVisit, error) {
	out := []hearth.SiteVisit{}
	var v hearth.SiteVisit
	err := pgEachRow(ctx, pool, query, args, []any{&v.Timestamp, &v.URL, &v.Accessed}, func() {
		v.Timestamp = v.Timestamp.UTC()
		out = append(out, v)
	})
	if err != nil {
		return nil, pgErr("read site access", err)
	}
	return out, nil
}
