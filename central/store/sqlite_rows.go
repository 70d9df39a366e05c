package store

import (
	"context"
	"database/sql"
	"strings"
)

// The hearth schema's upserts on SQLite, one per table, fed typed rows as
// bound parameters: no JSON text for SQLite to parse again. One prepared
// statement per table is executed per row, in the batch's one
// transaction: on modernc SQLite it costs the same CPU as multi-row VALUES
// of 100 rows and is simpler (bench/RESULTS.md, "Central fast path
// (issue 10)"); both cost a fifth less than json_each over JSON text.
type sqliteUpsert struct {
	sql  string
	cols int
}

var (
	sqliteDays = sqliteUpsert{`INSERT INTO screen_time (child, date, total_seconds, received_at) VALUES (?,?,?,?)
ON CONFLICT (child, date) DO UPDATE SET total_seconds = excluded.total_seconds, received_at = excluded.received_at
WHERE (excluded.received_at, excluded.total_seconds) > (screen_time.received_at, screen_time.total_seconds)`, 4}

	sqliteHours = sqliteUpsert{`INSERT INTO app_screen_time (child, date, app, hour, seconds, received_at) VALUES (?,?,?,?,?,?)
ON CONFLICT (child, date, app, hour) DO UPDATE SET seconds = excluded.seconds, received_at = excluded.received_at
WHERE (excluded.received_at, excluded.seconds) > (app_screen_time.received_at, app_screen_time.seconds)`, 6}

	sqliteLocs = sqliteUpsert{`INSERT INTO locations (child, ts, latitude, longitude, received_at) VALUES (?,?,?,?,?)
ON CONFLICT (child, ts) DO UPDATE SET latitude = excluded.latitude, longitude = excluded.longitude, received_at = excluded.received_at
WHERE (excluded.received_at, excluded.latitude, excluded.longitude) > (locations.received_at, locations.latitude, locations.longitude)`, 5}

	sqliteSites = sqliteUpsert{`INSERT INTO site_access (child, ts, url, accessed, received_at) VALUES (?,?,?,?,?)
ON CONFLICT (child, ts, url) DO UPDATE SET accessed = excluded.accessed, received_at = excluded.received_at
WHERE (excluded.received_at, excluded.accessed) > (site_access.received_at, site_access.accessed)`, 5}
)

// exec upserts n rows in tx with one prepared statement executed per row;
// add appends row i's values to args.
func (u sqliteUpsert) exec(ctx context.Context, tx *sql.Tx, n int, add func(args []any, i int) []any) error {
	if n == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, u.sql)
	if err != nil {
		return err
	}
	defer st.Close()
	args := make([]any, 0, u.cols)
	for i := range n {
		if _, err := st.ExecContext(ctx, add(args[:0], i)...); err != nil {
			return err
		}
	}
	return nil
}

// upsertRows writes a batch's rows in tx.
func (s *SQLite) upsertRows(ctx context.Context, tx *sql.Tx, r rows) error {
	if err := sqliteDays.exec(ctx, tx, len(r.days), func(a []any, i int) []any {
		x := &r.days[i]
		return append(a, x.child, x.date, x.total, fmtTS(x.recv))
	}); err != nil {
		return err
	}
	if err := sqliteHours.exec(ctx, tx, len(r.hours), func(a []any, i int) []any {
		x := &r.hours[i]
		return append(a, x.child, x.date, x.app, int64(x.hour), x.secs, fmtTS(x.recv))
	}); err != nil {
		return err
	}
	if err := sqliteLocs.exec(ctx, tx, len(r.locs), func(a []any, i int) []any {
		x := &r.locs[i]
		return append(a, x.child, fmtTS(x.ts), x.lat, x.lon, fmtTS(x.recv))
	}); err != nil {
		return err
	}
	return sqliteSites.exec(ctx, tx, len(r.sites), func(a []any, i int) []any {
		x := &r.sites[i]
		acc := int64(0)
		if x.accessed {
			acc = 1
		}
		return append(a, x.child, fmtTS(x.ts), x.url, acc, fmtTS(x.recv))
	})
}

// sqliteOwnersChunk is the most children one look-up binds, far below
// SQLite's limit of bound parameters.
const sqliteOwnersChunk = 500

// sqliteOwners looks up the homes of children, sqliteOwnersChunk at a time.
func sqliteOwners(ctx context.Context, tx *sql.Tx, children []string) (owners, error) {
	owned := make(owners, len(children))
	args := make([]any, 0, min(len(children), sqliteOwnersChunk))
	for start := 0; start < len(children); start += sqliteOwnersChunk {
		end := min(len(children), start+sqliteOwnersChunk)
		args = args[:0]
		for _, c := range children[start:end] {
			args = append(args, c)
		}
		q := `SELECT hash, home_id FROM children WHERE hash IN (?` + strings.Repeat(`,?`, end-start-1) + `)`
		if err := scanOwners(ctx, tx, q, args, owned); err != nil {
			return nil, err
		}
	}
	return owned, nil
}

func scanOwners(ctx context.Context, tx *sql.Tx, q string, args []any, owned owners) error {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var child string
		var home sql.NullString
		if err := rows.Scan(&child, &home); err != nil {
			return err
		}
		owned[child] = ownerOf(home.String, home.Valid)
	}
	return rows.Err()
}
