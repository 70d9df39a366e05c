package store

import (
	"context"
	"fmt"
	"time"

	"github.com/guardianai/hearth"
	"github.com/jackc/pgx/v5"
)

// GuardianPostgres is the PostgreSQL store of the GuardianAI schema; see
// GuardianSQLite. A batch is two pipelined rounds of set-based statements;
// see gaPGWrite.
type GuardianPostgres struct {
	db     *Postgres
	opts   Options
	report []string
}

var _ Store = (*GuardianPostgres)(nil)

// OpenGuardianPostgres opens the GuardianAI dashboard's PostgreSQL database,
// checks the Django tables hearth writes and applies hearth's pending
// migrations. A database without those tables is refused, saying what is
// missing.
func OpenGuardianPostgres(ctx context.Context, url string, opts Options) (*GuardianPostgres, error) {
	opts = opts.withDefaults()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w: %w", ErrInvalid, err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	g := &GuardianPostgres{db: &Postgres{pool: newPGPoolOpts(cfg, opts), opts: opts}, opts: opts}
	if err := g.migrate(ctx); err != nil {
		g.db.pool.close()
		return nil, fmt.Errorf("open postgres (schema guardianai): %w", err)
	}
	return g, nil
}

// MigrationReport returns what the migration found in the seed's rows.
func (g *GuardianPostgres) MigrationReport() []string { return g.report }

func (g *GuardianPostgres) migrate(ctx context.Context) error {
	return g.db.tx(ctx, "migrate", pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, pgMigrationLock); err != nil {
			return err
		}
		if err := pgCheckDjango(ctx, tx); err != nil {
			return err
		}
		current, err := pgApplyMigrations(ctx, tx, "hearth_schema_migrations", "guardianai_postgres", micro(g.opts.Now()))
		if err != nil {
			return err
		}
		if current == 0 {
			var locs, sites int64
			if err := tx.QueryRow(ctx, duplicatesSQL).Scan(&locs, &sites); err != nil {
				return fmt.Errorf("count the seed's duplicates: %w", err)
			}
			g.report = duplicateReport(locs, sites)
		}
		return nil
	})
}

// pgCheckDjango refuses a database without the Django tables and columns
// of djangoColumns (in the role's search path).
func pgCheckDjango(ctx context.Context, tx pgx.Tx) error {
	names := make([]string, len(djangoColumns))
	for i, t := range djangoColumns {
		names[i] = t.table
	}
	rows, err := tx.Query(ctx, `SELECT table_name::text, column_name::text FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = ANY($1)`, names)
	if err != nil {
		return fmt.Errorf("check the GuardianAI tables: %w", err)
	}
	have := map[string][]string{}
	var t, c string
	if _, err := pgx.ForEachRow(rows, []any{&t, &c}, func() error { have[t] = append(have[t], c); return nil }); err != nil {
		return fmt.Errorf("check the GuardianAI tables: %w", err)
	}
	if m := missingDjango(have); m != "" {
		return schemaMismatch(m)
	}
	return nil
}

// Close closes the idle connections.
func (g *GuardianPostgres) Close() error { return g.db.Close() }

// Ping checks that the server answers.
func (g *GuardianPostgres) Ping(ctx context.Context) error { return g.db.Ping(ctx) }

// Apply writes msgs into the Django tables in one transaction; see Store.
func (g *GuardianPostgres) Apply(ctx context.Context, home string, msgs []hearth.Message) ([]Result, error) {
	if len(msgs) == 0 {
		return []Result{}, nil
	}
	p := parse(msgs, g.opts)
	var results []Result
	err := g.db.tx(ctx, "apply batch", pgx.TxOptions{}, func(tx pgx.Tx) error {
		ids, owned, err := g.owners(ctx, tx, home, distinctChildren(msgs))
		if err != nil {
			return fmt.Errorf("look up children: %w", err)
		}
		var r rows
		results, r = p.plan(home, msgs, owned)
		return gaPGWrite(ctx, tx, r, ids, micro(g.opts.Now()), func(b *pgx.Batch) {
			g.lc().queueCount(b, home, storedCount(results))
		})
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// owners looks up the accounts_child ids of children and whether each is
// attached to home; see GuardianSQLite.owners.
func (g *GuardianPostgres) owners(ctx context.Context, tx pgx.Tx, home string, children []string) (map[string]int64, owners, error) {
	rows, err := tx.Query(ctx, `SELECT c.child_hash::text, c.id,
		EXISTS (SELECT 1 FROM hearth_home_children AS h WHERE h.home_id = $1 AND h.child_hash = c.child_hash)
		FROM accounts_child AS c WHERE c.child_hash = ANY($2::text[])`, home, children)
	if err != nil {
		return nil, nil, err
	}
	ids := make(map[string]int64, len(children))
	owned := make(owners, len(children))
	var hash string
	var id int64
	var in bool
	_, err = pgx.ForEachRow(rows, []any{&hash, &id, &in}, func() error {
		ids[hash] = id
		owned[hash] = notHome
		if in || home == "" {
			owned[hash] = home
		}
		return nil
	})
	return ids, owned, err
}
