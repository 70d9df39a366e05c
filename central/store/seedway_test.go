package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/guardianai/hearth"
	"github.com/jackc/pgx/v5"
)

// seedApply stores msgs the way the seed system did, for the benchmark's
// baseline: per message a child lookup, then per row one update_or_create
// in its own transaction (SELECT … FOR UPDATE, then UPDATE or INSERT).
func seedApply(ctx context.Context, s Store, home string, msgs []hearth.Message) error {
	opts := testOptions().withDefaults()
	for _, m := range msgs {
		owner, ok, err := s.ChildHome(ctx, m.ChildHash)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("unknown child %s", m.ChildHash)
		}
		_, r := plan(home, []hearth.Message{m}, owners{m.ChildHash: owner}, opts)
		for _, row := range seedRows(r) {
			if err := updateOrCreate(ctx, s, row); err != nil {
				return err
			}
		}
	}
	return nil
}

// seedRow is one row as Django's update_or_create(keys, defaults=vals) sees it.
type seedRow struct {
	table   string
	keys    []string
	keyVals []any
	cols    []string
	vals    []any
	recv    time.Time
}

func seedRows(r rows) []seedRow {
	var out []seedRow
	for _, x := range r.days {
		out = append(out, seedRow{"screen_time", []string{"child", "date"}, []any{x.child, x.date},
			[]string{"total_seconds"}, []any{x.total}, x.recv})
	}
	for _, x := range r.hours {
		out = append(out, seedRow{"app_screen_time", []string{"child", "date", "app", "hour"}, []any{x.child, x.date, x.app, x.hour},
			[]string{"seconds"}, []any{x.secs}, x.recv})
	}
	for _, x := range r.locs {
		out = append(out, seedRow{"locations", []string{"child", "ts"}, []any{x.child, x.ts},
			[]string{"latitude", "longitude"}, []any{x.lat, x.lon}, x.recv})
	}
	for _, x := range r.sites {
		out = append(out, seedRow{"site_access", []string{"child", "ts", "url"}, []any{x.child, x.ts, x.url},
			[]string{"accessed"}, []any{x.accessed}, x.recv})
	}
	return out
}

func updateOrCreate(ctx context.Context, s Store, r seedRow) error {
	switch s := s.(type) {
	case *SQLite:
		return sqliteUpdateOrCreate(ctx, s, r)
	case *Postgres:
		return pgUpdateOrCreate(ctx, s, r)
	}
	return fmt.Errorf("unknown store %T", s)
}

// seedSQL builds the three statements; ph returns the placeholder of
// argument n (1-based) for column col. The UPDATE takes the values first,
// then received_at, then the keys.
func seedSQL(r seedRow, ph func(n int, col string) string, lock string) (sel, upd, ins string) {
	where := func(first int) string {
		var w []string
		for i, k := range r.keys {
			w = append(w, k+" = "+ph(first+i, k))
		}
		return strings.Join(w, " AND ")
	}
	sel = "SELECT received_at FROM " + r.table + " WHERE " + where(1) + lock
	var set []string
	for i, c := range r.cols {
		set = append(set, c+" = "+ph(i+1, c))
	}
	set = append(set, "received_at = "+ph(len(r.cols)+1, "received_at"))
	upd = "UPDATE " + r.table + " SET " + strings.Join(set, ", ") + " WHERE " + where(len(r.cols)+2)
	cols := append(append(append([]string{}, r.keys...), r.cols...), "received_at")
	var vals []string
	for i, c := range cols {
		vals = append(vals, ph(i+1, c))
	}
	ins = "INSERT INTO " + r.table + " (" + strings.Join(cols, ", ") + ") VALUES (" + strings.Join(vals, ", ") + ")"
	return sel, upd, ins
}

func sqliteUpdateOrCreate(ctx context.Context, s *SQLite, r seedRow) error {
	sel, upd, ins := seedSQL(r, func(int, string) string { return "?" }, "")
	conv := func(v any) any {
		switch v := v.(type) {
		case time.Time:
			return fmtTS(v)
		case bool:
			if v {
				return 1
			}
			return 0
		}
		return v
	}
	var keys, vals []any
	for _, v := range r.keyVals {
		keys = append(keys, conv(v))
	}
	for _, v := range r.vals {
		vals = append(vals, conv(v))
	}
	recv := fmtTS(r.recv)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var stored string
	err = tx.QueryRowContext(ctx, sel, keys...).Scan(&stored)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = tx.ExecContext(ctx, ins, append(append(keys, vals...), recv)...)
	case err == nil && recv > stored:
		_, err = tx.ExecContext(ctx, upd, append(append(vals, recv), keys...)...)
	}
	if err != nil {
		return err
	}
	return tx.Commit()
}

func pgUpdateOrCreate(ctx context.Context, s *Postgres, r seedRow) error {
	ph := func(n int, col string) string {
		if col == "date" {
			return fmt.Sprintf("$%d::text::date", n)
		}
		return fmt.Sprintf("$%d", n)
	}
	sel, upd, ins := seedSQL(r, ph, " FOR UPDATE")
	return s.tx(ctx, "update_or_create", pgx.TxOptions{}, func(tx pgx.Tx) error {
		var stored time.Time
		err := tx.QueryRow(ctx, sel, r.keyVals...).Scan(&stored)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			_, err = tx.Exec(ctx, ins, append(append(append([]any{}, r.keyVals...), r.vals...), r.recv)...)
		case err == nil && r.recv.After(stored):
			_, err = tx.Exec(ctx, upd, append(append(append([]any{}, r.vals...), r.recv), r.keyVals...)...)
		}
		return err
	})
}
