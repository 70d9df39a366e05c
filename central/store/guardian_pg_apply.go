package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// A GuardianAI batch on PostgreSQL is two pipelined rounds of set-based
// statements. The first creates the apps and days and reads back their
// ids, and writes the locations and visits; the second writes the hours
// by those ids, so that no statement joins every hour row to its day and
// app again.
//
// Lock order: every statement that locks existing rows takes them from an
// INSERT … ON CONFLICT over input sorted by key (a version row by the id
// of its Django row, a key row by its key), so concurrent batches lock
// the rows of one table in the same order whatever the statements' plans
// (an UPDATE … FROM locks in the order of its join). A Django row is only
// updated under the lock of its version or key row. The tables come in
// the same order in every batch: apps, days, locations, visits, hours.
//
// In every statement $1 is now (created/updated, as Django's auto fields
// set them) and the rows come as parallel arrays.
const (
	gaPGApps = `INSERT INTO backend_app (domain, app_name, icon_url, blocked_count)
SELECT d, n, '', 0 FROM unnest($1::text[], $2::text[]) AS u(d, n) ORDER BY d
ON CONFLICT (domain) DO NOTHING`

	// A later statement than gaPGApps, so it sees apps another batch
	// created meanwhile (which gaPGApps waited for and skipped).
	gaPGAppIDs = `SELECT domain, id FROM backend_app WHERE domain = ANY($1::text[])`

	// New days and their versions. A day another batch inserts meanwhile
	// makes this wait and skip it; gaPGDaysKnown, a later statement, sees
	// it.
	gaPGDaysNew = `WITH u AS (SELECT * FROM unnest($2::int8[], $3::date[], $4::int8[], $5::text[], $6::timestamptz[]) AS u(c, d, n, a, r)),
ins AS (INSERT INTO backend_screentime (date, total_screen_time, app_wise_data, created, updated, child_id)
	SELECT d, n, a::jsonb, $1, $1, c FROM u ORDER BY c, d ON CONFLICT (child_id, date) DO NOTHING RETURNING id, child_id, date)
INSERT INTO hearth_screentime (row_id, received_at, total, apps)
SELECT ins.id, u.r, u.n, u.a FROM ins JOIN u ON u.c = ins.child_id AND u.d = ins.date
ON CONFLICT (row_id) DO NOTHING`

	// Every day of the batch: its version is upserted in id order and
	// compared, under its row lock, with the latest committed one (so
	// newer-wins holds between concurrent batches); the days that win are
	// written. A day without a version (the seed wrote it while it still
	// ran beside hearth) is versioned with the newer of the batch's and the
	// row's own (updated, not after now). A day that loses to the version
	// this statement sees is left unlocked: versions only grow, so it
	// loses to the latest too (a resend, or a day gaPGDaysNew just wrote).
	// The ids of the days come back.
	gaPGDaysKnown = `WITH u AS (SELECT * FROM unnest($2::int8[], $3::date[], $4::int8[], $5::text[], $6::timestamptz[]) AS u(c, d, n, a, r)),
x AS (SELECT s.id, s.child_id, s.date, u.r, u.n, u.a,
		least(s.updated, $1::timestamptz) AS sr, s.total_screen_time AS sn, s.app_wise_data::text AS sa,
		v.row_id IS NOT NULL OR (u.r, u.n, u.a COLLATE "C") > (least(s.updated, $1::timestamptz), s.total_screen_time, s.app_wise_data::text COLLATE "C") AS mine,
		v.row_id IS NOT NULL AND (u.r, u.n, u.a COLLATE "C") <= (v.received_at, v.total, v.apps COLLATE "C") AS stale
	FROM u JOIN backend_screentime AS s ON s.child_id = u.c AND s.date = u.d LEFT JOIN hearth_screentime AS v ON v.row_id = s.id),
w AS (INSERT INTO hearth_screentime AS v (row_id, received_at, total, apps)
	SELECT id, CASE WHEN mine THEN r ELSE sr END, CASE WHEN mine THEN n ELSE sn END, CASE WHEN mine THEN a ELSE sa END FROM x WHERE NOT stale ORDER BY id
	ON CONFLICT (row_id) DO UPDATE SET received_at = excluded.received_at, total = excluded.total, apps = excluded.apps
	WHERE (excluded.received_at, excluded.total, excluded.apps COLLATE "C") > (v.received_at, v.total, v.apps COLLATE "C")
	RETURNING row_id, received_at, total, apps),
upd AS (UPDATE backend_screentime AS s SET total_screen_time = w.total, app_wise_data = w.apps::jsonb, updated = $1
	FROM w WHERE s.id = w.row_id AND ` + gaPGDayChanged + `)
SELECT child_id, to_char(date, 'YYYY-MM-DD'), id FROM x`

	// gaPGDayChanged is false for a Django row whose new version is the one
	// it holds already (the seed's row, versioned as it stands), which is
	// left alone; see also the last line of gaPGHoursKnown.
	gaPGDayChanged = `NOT (w.received_at = least(s.updated, $1::timestamptz) AND w.total = s.total_screen_time AND w.apps = s.app_wise_data::text)`

	// New hours and their versions; see gaPGDaysNew.
	gaPGHoursNew = `WITH u AS (SELECT * FROM unnest($2::int8[], $3::int8[], $4::int2[], $5::int8[], $6::timestamptz[]) AS u(sid, aid, h, n, r)),
ins AS (INSERT INTO backend_appscreentime (hour, seconds, created, updated, app_id, screen_time_id)
	SELECT h, n, $1, $1, aid, sid FROM u ORDER BY sid, aid, h ON CONFLICT (screen_time_id, app_id, hour) DO NOTHING
	RETURNING id, screen_time_id, app_id, hour)
INSERT INTO hearth_appscreentime (row_id, received_at, seconds)
SELECT ins.id, u.r, u.n FROM ins JOIN u ON u.sid = ins.screen_time_id AND u.aid = ins.app_id AND u.h = ins.hour
ON CONFLICT (row_id) DO NOTHING`

	// Every hour of the batch; see gaPGDaysKnown.
	gaPGHoursKnown = `WITH u AS (SELECT * FROM unnest($2::int8[], $3::int8[], $4::int2[], $5::int8[], $6::timestamptz[]) AS u(sid, aid, h, n, r)),
x AS (SELECT s.id, u.r, u.n, least(s.updated, $1::timestamptz) AS sr, s.seconds AS sn,
		v.row_id IS NOT NULL OR (u.r, u.n) > (least(s.updated, $1::timestamptz), s.seconds) AS mine,
		v.row_id IS NOT NULL AND (u.r, u.n) <= (v.received_at, v.seconds) AS stale
	FROM u JOIN backend_appscreentime AS s ON s.screen_time_id = u.sid AND s.app_id = u.aid AND s.hour = u.h
	LEFT JOIN hearth_appscreentime AS v ON v.row_id = s.id),
w AS (INSERT INTO hearth_appscreentime AS v (row_id, received_at, seconds)
	SELECT id, CASE WHEN mine THEN r ELSE sr END, CASE WHEN mine THEN n ELSE sn END FROM x WHERE NOT stale ORDER BY id
	ON CONFLICT (row_id) DO UPDATE SET received_at = excluded.received_at, seconds = excluded.seconds
	WHERE (excluded.received_at, excluded.seconds) > (v.received_at, v.seconds)
	RETURNING row_id, received_at, seconds)
UPDATE backend_appscreentime AS s SET seconds = w.seconds, updated = $1 FROM w
WHERE s.id = w.row_id AND NOT (w.received_at = least(s.updated, $1::timestamptz) AND w.seconds = s.seconds)`

	// Locations: the key first, in key order (its primary key admits one
	// batch per key; a new key takes the id of its row). A key the batch
	// is newer than gets the batch's fix; a key whose row the dashboard
	// deleted keeps its fix and gets its row back. Then the rows of the
	// keys written, by id.
	gaPGLocs = `WITH u AS (SELECT * FROM unnest($2::int8[], $3::timestamptz[], $4::float8[], $5::float8[], $6::timestamptz[]) AS u(c, ts, lat, lon, r)),
k AS (INSERT INTO hearth_locationhistory AS k (child_id, ts, row_id, received_at, latitude, longitude)
	SELECT c, ts, nextval('backend_locationhistory_id_seq'), r, lat, lon FROM u ORDER BY c, ts
	ON CONFLICT (child_id, ts) DO UPDATE SET
		received_at = CASE WHEN ` + gaPGLocNewer + ` THEN excluded.received_at ELSE k.received_at END,
		latitude = CASE WHEN ` + gaPGLocNewer + ` THEN excluded.latitude ELSE k.latitude END,
		longitude = CASE WHEN ` + gaPGLocNewer + ` THEN excluded.longitude ELSE k.longitude END
	WHERE ` + gaPGLocNewer + ` OR NOT EXISTS (SELECT 1 FROM backend_locationhistory AS l WHERE l.id = k.row_id)
	RETURNING row_id, child_id, ts, latitude, longitude)
INSERT INTO backend_locationhistory (id, "timestamp", latitude, longitude, created, child_id)
SELECT row_id, ts, latitude, longitude, $1, child_id FROM k ORDER BY row_id
ON CONFLICT (id) DO UPDATE SET latitude = excluded.latitude, longitude = excluded.longitude`

	gaPGLocNewer = `(excluded.received_at, excluded.latitude, excluded.longitude) > (k.received_at, k.latitude, k.longitude)`

	// Visits; see gaPGLocs.
	gaPGSites = `WITH u AS (SELECT * FROM unnest($2::int8[], $3::timestamptz[], $4::text[], $5::bool[], $6::timestamptz[]) AS u(c, ts, url, acc, r)),
k AS (INSERT INTO hearth_siteaccesslog AS k (child_id, ts, url, row_id, received_at, accessed)
	SELECT c, ts, url, nextval('backend_siteaccesslog_id_seq'), r, acc FROM u ORDER BY c, ts, url COLLATE "C"
	ON CONFLICT (child_id, ts, url) DO UPDATE SET
		received_at = CASE WHEN ` + gaPGSiteNewer + ` THEN excluded.received_at ELSE k.received_at END,
		accessed = CASE WHEN ` + gaPGSiteNewer + ` THEN excluded.accessed ELSE k.accessed END
	WHERE ` + gaPGSiteNewer + ` OR NOT EXISTS (SELECT 1 FROM backend_siteaccesslog AS l WHERE l.id = k.row_id)
	RETURNING row_id, child_id, ts, url, accessed)
INSERT INTO backend_siteaccesslog (id, "timestamp", url, accessed, created, child_id)
SELECT row_id, ts, url, accessed, $1, child_id FROM k ORDER BY row_id
ON CONFLICT (id) DO UPDATE SET accessed = excluded.accessed`

	gaPGSiteNewer = `(excluded.received_at, excluded.accessed) > (k.received_at, k.accessed)`
)

// gaPGDay is a day's key by ids, as gaPGDaysKnown returns it: the date
// as hearth.DateLayout (to_char, since date::text follows the server's
// DateStyle).
type gaPGDay struct {
	child int64
	date  string
}

// gaPGWrite writes a batch's rows into the Django tables and hearth's
// version and key rows, in tx; children maps hashes to accounts_child ids.
// last queues what comes after every row (the count of messages stored)
// into the last round.
func gaPGWrite(ctx context.Context, tx pgx.Tx, r rows, children map[string]int64, now time.Time, last func(*pgx.Batch)) error {
	apps := distinctApps(r)
	appIDs := make(map[string]int64, len(apps))
	dayIDs := make(map[gaPGDay]int64, len(r.days))
	b := &pgx.Batch{}
	if len(apps) > 0 {
		names := make([]string, len(apps))
		for i, a := range apps {
			names[i] = appName(a)
		}
		b.Queue(gaPGApps, apps, names)
		if len(r.hours) > 0 {
			b.Queue(gaPGAppIDs, apps).Query(func(rows pgx.Rows) error {
				var domain string
				var id int64
				_, err := pgx.ForEachRow(rows, []any{&domain, &id}, func() error { appIDs[domain] = id; return nil })
				return err
			})
		}
	}
	if n := len(r.days); n > 0 {
		c, d, t, a, rc := make([]int64, n), make([]string, n), make([]int64, n), make([]string, n), make([]time.Time, n)
		for i, x := range r.days {
			c[i], d[i], t[i], a[i], rc[i] = children[x.child], x.date, x.total, x.apps, x.recv
		}
		b.Queue(gaPGDaysNew, now, c, d, t, a, rc)
		b.Queue(gaPGDaysKnown, now, c, d, t, a, rc).Query(func(rows pgx.Rows) error {
			var k gaPGDay
			var id int64
			_, err := pgx.ForEachRow(rows, []any{&k.child, &k.date, &id}, func() error { dayIDs[k] = id; return nil })
			return err
		})
	}
	queueLocsSites(b, r, children, now)
	if len(r.hours) == 0 {
		last(b)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if len(r.hours) == 0 {
		return nil
	}
	b, err := hoursBatch(r, children, appIDs, dayIDs, now)
	if err != nil {
		return err
	}
	last(b)
	return tx.SendBatch(ctx, b).Close()
}

// queueLocsSites queues the statements of the batch's locations and visits.
func queueLocsSites(b *pgx.Batch, r rows, children map[string]int64, now time.Time) {
	if n := len(r.locs); n > 0 {
		c, ts, lat, lon, rc := make([]int64, n), make([]time.Time, n), make([]float64, n), make([]float64, n), make([]time.Time, n)
		for i, x := range r.locs {
			c[i], ts[i], lat[i], lon[i], rc[i] = children[x.child], x.ts, x.lat, x.lon, x.recv
		}
		b.Queue(gaPGLocs, now, c, ts, lat, lon, rc)
	}
	if n := len(r.sites); n > 0 {
		c, ts, u, acc, rc := make([]int64, n), make([]time.Time, n), make([]string, n), make([]bool, n), make([]time.Time, n)
		for i, x := range r.sites {
			c[i], ts[i], u[i], acc[i], rc[i] = children[x.child], x.ts, x.url, x.accessed, x.recv
		}
		b.Queue(gaPGSites, now, c, ts, u, acc, rc)
	}
}

// hoursBatch queues the statements of the batch's hours, by the ids of
// their days and apps.
func hoursBatch(r rows, children map[string]int64, appIDs map[string]int64, dayIDs map[gaPGDay]int64, now time.Time) (*pgx.Batch, error) {
	n := len(r.hours)
	sid, aid, h, t, rc := make([]int64, n), make([]int64, n), make([]int16, n), make([]int64, n), make([]time.Time, n)
	for i, x := range r.hours {
		var ok1, ok2 bool
		sid[i], ok1 = dayIDs[gaPGDay{children[x.child], x.date}]
		aid[i], ok2 = appIDs[x.app]
		if !ok1 || !ok2 {
			// Every hour comes with its day and app, which the first
			// round created or found; a miss is a bug, never a skip.
			return nil, fmt.Errorf("hour %s %s %s: no id for its day (%v) or app (%v)", x.child, x.date, x.app, ok1, ok2)
		}
		h[i], t[i], rc[i] = int16(x.hour), x.secs, x.recv
	}
	b := &pgx.Batch{}
	b.Queue(gaPGHoursNew, now, sid, aid, h, t, rc)
	b.Queue(gaPGHoursKnown, now, sid, aid, h, t, rc)
	return b, nil
}
