package store

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

//go:embed migrations
var migrationFS embed.FS

// migration is one numbered schema step. Files are named NNNN_what.sql,
// one directory per engine; the applied versions are kept in the table
// schema_migrations.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the steps of one engine ("sqlite", "postgres") in order.
func migrations(engine string) []migration {
	dir := path.Join("migrations", engine)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		panic("BUG: embedded migrations: " + err.Error())
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			panic("BUG: migration file not named NNNN_name.sql: " + e.Name())
		}
		b, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			panic("BUG: embedded migrations: " + err.Error())
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	return out
}

// pending returns the migrations after version current, or ErrSchemaTooNew
// when the database knows a version this binary does not.
func pending(engine string, current int) ([]migration, error) {
	all := migrations(engine)
	latest := all[len(all)-1].version
	if current > latest {
		return nil, fmt.Errorf("%w: database is at version %d, this binary knows up to %d; upgrade hearth-central", ErrSchemaTooNew, current, latest)
	}
	i := slices.IndexFunc(all, func(m migration) bool { return m.version > current })
	if i < 0 {
		return nil, nil
	}
	return all[i:], nil
}
