package store

import (
	"context"
	"testing"
	"time"

	"github.com/guardianai/hearth/central/store/pgtest"
)

// testPruneBatches: a child with several batches of old rows loses them
// all, counted, and keeps the rest; another child's rows are cut as well.
func testPruneBatches(t *testing.T, f *fixture) {
	ctx := context.Background()
	const old = 2*pruneRows + 7 // several batches on every engine
	var msgs []hearthMsg
	for i := range old {
		msgs = append(msgs, locMsg(f.a1, at(-50*time.Hour).Add(time.Duration(i)*time.Second), 1, 1, at(0)))
	}
	msgs = append(msgs, locMsg(f.a1, at(-time.Hour), 2, 2, at(0)), locMsg(f.a2, at(-50*time.Hour), 3, 3, at(0)))
	applyOK(t, f.s, f.homeA, msgs...)
	n, err := f.s.Prune(ctx, at(-2*time.Hour))
	if err != nil || n != old+1 {
		t.Fatalf("Prune = %d, %v; want %d", n, err, old+1)
	}
	locs, err := f.s.Locations(ctx, f.a1, at(-100*time.Hour), at(0))
	if err != nil || len(locs) != 1 || locs[0].Latitude != 2 {
		t.Fatalf("left: %v %v", locs, err)
	}
}

// Ensure that on PostgreSQL one replica at a time holds the prune lock,
// and that it is free again once released.
func TestPostgres_PruneLock(t *testing.T) {
	pgtest.Require(t)
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	a, b := open(t, dsn, testOptions()), open(t, dsn, testOptions())
	release, ok, err := a.(PruneLocker).PruneLock(ctx)
	if err != nil || !ok {
		t.Fatalf("first replica: %v %v", ok, err)
	}
	if _, ok, err := b.(PruneLocker).PruneLock(ctx); err != nil || ok {
		t.Fatalf("second replica while the first prunes: ok %v, %v", ok, err)
	}
	release()
	release2, ok, err := b.(PruneLocker).PruneLock(ctx)
	if err != nil || !ok {
		t.Fatalf("second replica after the first: %v %v", ok, err)
	}
	release2()
}
