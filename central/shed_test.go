package central

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/store/pgtest"
	"github.com/guardianai/hearth/internal/testutil"
	"github.com/jackc/pgx/v5"
)

// Ensure that a replica serving batches_in_flight batches (their bodies
// stall) answers the next batch, of another home, 503 + Retry-After with
// its reason, counted as shed, and serves it again once they are done.
func TestServer_Shed_BatchesInFlight(t *testing.T) {
	g := startGuarded(t, 3, func(c *Config) { c.BatchesInFlight = 2 })
	var stalled []net.Conn
	var bodies [][]byte
	for h := range 2 {
		body := batchFor(g.children[h], 1)
		head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", hearth.PathEdgeBatches, g.tokens[h], len(body))
		stalled, bodies = append(stalled, g.stall(t, head, body[:10])), append(bodies, body)
	}
	g.waitBodyBytes(t, int64(len(bodies[0])+len(bodies[1])))
	third := batchFor(g.children[2], 1)
	a := g.do(t, "POST", hearth.PathEdgeBatches, g.tokens[2], bytes.NewReader(third), nil)
	if a.code != 503 || a.header.Get("Retry-After") == "" || !strings.Contains(a.body, "batches_in_flight") {
		t.Fatalf("batch beyond batches_in_flight: %d %q %s", a.code, a.header.Get("Retry-After"), a.body)
	}
	g.wantMetrics(t, `hearth_central_batches_in_flight 2`)
	for i, c := range stalled {
		c.Write(bodies[i][10:])
		if a := readReply(t, c); a.code != 200 {
			t.Fatalf("stalled batch completed: %d %s", a.code, a.body)
		}
	}
	if a := g.do(t, "POST", hearth.PathEdgeBatches, g.tokens[2], bytes.NewReader(third), nil); a.code != 200 {
		t.Fatalf("batch once the others are done: %d %s", a.code, a.body)
	}
	g.wantMetrics(t,
		`hearth_central_batches_total{result="shed"} 1`,
		`hearth_central_limited_total{endpoint="batches",limit="in_flight"} 1`,
		`hearth_central_batches_in_flight 0`,
		`hearth_central_batches_total{result="db_wait"} 0`) // pre-initialised
}

// Ensure that on PostgreSQL a batch that waits longer than db_wait for a
// database connection (the only one is held by a batch blocked on a
// table lock) is answered 503 + Retry-After, counted as db_wait, while
// the blocked batch is stored once the lock goes; and that the pool's
// state is exported.
func TestServer_Shed_DBWait(t *testing.T) {
	dsn := pgtest.DSN(t)
	g := startGuarded(t, 2, func(c *Config) {
		c.DB, c.MaxDBConns, c.DBWait = dsn, 1, 200*time.Millisecond
		c.DBProbeInterval = time.Hour // the write probe must not take the one connection
	})
	testutil.WaitFor(t, 10*time.Second, func() error { // the prune at start must not be what waits for the lock
		if !strings.Contains(g.logs.String(), "retention prune done") {
			return fmt.Errorf("no prune yet")
		}
		return nil
	})
	ctx := context.Background()
	locker, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(ctx)
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE locations IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	blocked := make(chan answer, 1)
	go func() {
		blocked <- g.do(t, "POST", hearth.PathEdgeBatches, g.tokens[0], bytes.NewReader(batchFor(g.children[0], 1)), nil)
	}()
	testutil.WaitFor(t, 10*time.Second, func() error { // the blocked batch waits for the lock, holding the connection
		var waiting int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE NOT granted`).Scan(&waiting); err != nil || waiting == 0 {
			return fmt.Errorf("no batch waits for the lock (%v)", err)
		}
		return nil
	})
	g.wantMetrics(t, `hearth_central_db_pool_connections{state="acquired"} 1`)
	a := g.do(t, "POST", hearth.PathEdgeBatches, g.tokens[1], bytes.NewReader(batchFor(g.children[1], 1)), nil)
	if a.code != 503 || a.header.Get("Retry-After") == "" || !strings.Contains(a.body, "db_wait") {
		t.Fatalf("batch waiting for a connection: %d %q %s", a.code, a.header.Get("Retry-After"), a.body)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if b := <-blocked; b.code != 200 {
		t.Fatalf("blocked batch once the lock went: %d %s\n%s", b.code, b.body, g.logs.String())
	}
	g.wantMetrics(t,
		`hearth_central_batches_total{result="db_wait"} 1`,
		`hearth_central_limited_total{endpoint="batches",limit="db_wait"} 1`,
		`hearth_central_db_pool_max_connections 1`)
	// The refused batch's wait was canceled (and a scrape's read of the
	// fleet may have been too).
	if m := g.metrics(t); !regexp.MustCompile(`hearth_central_db_pool_acquires_total\{how="canceled"\} [1-9]`).MatchString(m) {
		t.Errorf("canceled waits not counted:\n%s", testutil.GrepLines(m, "db_pool"))
	}
}
