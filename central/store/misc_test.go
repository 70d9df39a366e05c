package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/guardianai/hearth"
)

// Ensure that migrations apply once, that reopening and Migrate are no-ops,
// and that a database migrated by a newer binary is refused.
func TestStore_Migrate(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ctx := context.Background()
		dsn := e.dsn(t)
		for range 2 {
			if err := Migrate(ctx, dsn); err != nil {
				t.Fatal(err)
			}
		}
		s := open(t, dsn, testOptions())
		rows := rawQuerier(t, s)(`SELECT version, name FROM schema_migrations ORDER BY version`)
		if fmt.Sprint(rows) != "[[1 0001_init.sql] [2 0002_readers.sql] [3 0003_heartbeat.sql] [4 0004_lifecycle.sql] [5 0005_detach.sql] [6 0006_console.sql]]" {
			t.Fatalf("schema_migrations = %v", rows)
		}
		rawExec(t, s, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', '2030-01-01T00:00:00.000000Z')`)
		s.Close()
		if _, err := Open(ctx, dsn); !errors.Is(err, ErrSchemaTooNew) {
			t.Fatalf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
		}
	})
}

// Ensure that a malformed database URL is refused as invalid.
func TestOpen_BadDSN(t *testing.T) {
	for _, dsn := range []string{"", "mysql://x", "sqlite://", "sqlite:///tmp/a?b.db", "postgres://%zz"} {
		if _, err := Open(context.Background(), dsn); !errors.Is(err, ErrInvalid) {
			t.Errorf("Open(%q) = %v, want ErrInvalid", dsn, err)
		}
	}
}

// Ensure that a PostgreSQL server that does not answer is reported as
// unavailable, so the server can answer 503.
func TestOpenPostgres_Unreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = Open(ctx, "postgres://nobody@"+addr+"/x?sslmode=disable&connect_timeout=2")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open = %v, want ErrUnavailable", err)
	}
}

// Ensure that plan keeps one winning row per key, sorted by key.
func TestPlan_DedupesAndSorts(t *testing.T) {
	owned := owners{"b": "h", "a": "h"}
	msgs := []hearth.Message{
		locMsg("b", at(-time.Hour), 1, 1, at(-2*time.Second)),
		locMsg("a", at(-time.Hour), 2, 2, at(-time.Second)),
		locMsg("b", at(-time.Hour), 3, 3, at(-time.Second)),
		locMsg("b", at(-time.Hour).Add(100*time.Nanosecond), 0, 0, at(-time.Second)), // same µs key, loses the tie
		locMsg("a", at(-2*time.Hour), 4, 4, at(-time.Second)),
	}
	res, r := plan("h", msgs, owned, testOptions().withDefaults())
	for i, x := range res {
		if x.Status != StatusOK {
			t.Fatalf("message %d: %+v", i, x)
		}
	}
	var got []string
	for _, l := range r.locs {
		got = append(got, l.String())
	}
	want := []string{
		"a 2025-12-10T10:00:00Z lat=4 lon=4 recv=2025-12-10T11:59:59Z",
		"a 2025-12-10T11:00:00Z lat=2 lon=2 recv=2025-12-10T11:59:59Z",
		"b 2025-12-10T11:00:00Z lat=3 lon=3 recv=2025-12-10T11:59:59Z",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rows =\n%v\nwant\n%v", got, want)
	}
}

// Ensure that the JSON handed to SQLite escapes what must be escaped.
func TestAppendJSONString(t *testing.T) {
	for in, want := range map[string]string{
		"plain":      `"plain"`,
		`q"b\`:       `"q\"b\\"`,
		"\x00\n\x1f": `"\u0000\u000a\u001f"`,
		"ü😀":         `"ü😀"`,
	} {
		if got := string(appendJSONString(nil, in)); got != want {
			t.Errorf("appendJSONString(%q) = %s, want %s", in, got, want)
		}
	}
	var b jsonArray
	if b.done() != nil {
		t.Fatal("empty array is not nil")
	}
	b.row().str("a").int(1)
	b.row().float(0.5).ts(testNow)
	if got := string(b.done()); got != `[["a",1],[0.5,"2025-12-10T12:00:00.000000Z"]]` {
		t.Fatalf("rows = %s", got)
	}
}

// Ensure that the benchmark's seed-way baseline does the same work as
// Apply: the same batches end in the same tables.
func TestSeedWay_SameTables(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		f, g := newFixture(t, e), newFixture(t, e)
		batches := [][]hearth.Message{mixedBatch(f), {
			stMsg(f.a1, "2025-12-09", 500, map[string]map[int]int64{"a": {0: 50}, "c": {1: 1}}, at(0)),
			locMsg(f.a1, at(-2*time.Hour), 7, 8, at(-2*time.Hour)), // older: ignored
			siteMsg(f.a1, at(0), visit{at(-2 * time.Hour), "https://y.example", true}),
		}}
		for _, b := range batches {
			applyOK(t, f.s, f.homeA, b...)
			if err := seedApply(context.Background(), g.s, g.homeA, b); err != nil {
				t.Fatal(err)
			}
		}
		if d := dump(t, g.s).diff(dump(t, f.s)); d != "" {
			t.Fatalf("seed way differs from Apply:\n%s", d)
		}
	})
}
