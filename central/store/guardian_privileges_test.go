package store

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// readmeGrants returns the SQL of the README's "PostgreSQL: hearth's role"
// block, for role, without its CREATE ROLE.
func readmeGrants(t *testing.T, role string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "### PostgreSQL: hearth's role")
	_, block, ok2 := strings.Cut(sec, "```sql\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README has no sql block under \"PostgreSQL: hearth's role\"")
	}
	var out []string
	for _, st := range strings.Split(block, ";") {
		st = strings.TrimSpace(st)
		if st == "" || strings.HasPrefix(st, "CREATE ROLE") {
			continue
		}
		out = append(out, strings.Replace(st, "TO hearth", "TO "+role, 1))
	}
	return out
}

// Ensure that hearth works on the dashboard's PostgreSQL database with only
// the privileges the README lists for its role: migrate, homes and
// children, batches (new apps, resends, newer-wins), reads, prune, the
// write probe and the console's sessions and message counts.
func TestGuardianAI_Postgres_READMEPrivilegesSuffice(t *testing.T) {
	gaEngines[1].require(t)
	ctx := context.Background()
	admin := gaPostgresDSN(t, fixtureChildren...)
	role := "hearth_priv_" + strings.ToLower(randomURLSafe(6))
	role = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, role)
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, st := range append([]string{"CREATE ROLE " + role + " LOGIN PASSWORD 'pw'", "REVOKE CREATE ON SCHEMA public FROM PUBLIC"}, readmeGrants(t, role)...) {
		if _, err := c.Exec(ctx, st); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		c.Exec(ctx, "DROP OWNED BY "+role)
		c.Exec(ctx, "DROP ROLE "+role)
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, "pw")
	opts := testOptions()
	opts.Schema = SchemaGuardianAI
	s, err := OpenWith(ctx, u.String(), opts)
	if err != nil {
		t.Fatalf("open as %s: %v", role, err)
	}
	defer s.Close()
	home, _, err := s.AddHome(ctx, "home")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddChild(ctx, home, "child-a1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddReader(ctx, home); err != nil {
		t.Fatal(err)
	}
	old := stMsg("child-a1", "2024-12-20", 10, map[string]map[int]int64{"com.old": {1: 10}}, at(-time.Hour))
	batch := []hearthMsg{
		stMsg("child-a1", "2025-12-09", 100, map[string]map[int]int64{"com.example.app1": {9: 100}}, at(-time.Hour)),
		locMsg("child-a1", at(-2*time.Hour), 1, 2, at(-time.Hour)),
		siteMsg("child-a1", at(-time.Hour), visit{at(-2 * time.Hour), "https://x.example/", true}),
		old,
	}
	applyOK(t, s, home, batch...)
	applyOK(t, s, "", batch...)
	newer := []hearthMsg{
		stMsg("child-a1", "2025-12-09", 200, map[string]map[int]int64{"com.example.app1": {9: 200}}, at(-time.Minute)),
		locMsg("child-a1", at(-2*time.Hour), 3, 4, at(-time.Minute)),
		siteMsg("child-a1", at(-time.Minute), visit{at(-2 * time.Hour), "https://x.example/", false}),
	}
	applyOK(t, s, home, newer...)
	if _, err := s.ScreenTime(ctx, "child-a1", "2025-12-01", "2025-12-10"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Locations(ctx, "child-a1", at(-24*time.Hour), testNow); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stats(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := s.HomeMessages(ctx, testNow.Add(-23*time.Hour)); err != nil || got[home] != int64(len(batch)+len(newer)) {
		t.Fatalf("HomeMessages = %v, %v; want %d for the home", got, err, len(batch)+len(newer))
	}
	if err := s.AddConsoleSession(ctx, "id", ConsoleSession{Expires: testNow.Add(time.Hour)}, testNow); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsoleSession(ctx, "id", testNow); err != nil {
		t.Fatal(err)
	}
	if err := s.EndConsoleSession(ctx, "id"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Prune(ctx, testNow.AddDate(0, 0, -300)); err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v; want the old day and its hour", n, err)
	}
	if err := s.ProbeWrite(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.(*GuardianPostgres).Apps(ctx); err != nil {
		t.Fatal(err)
	}
}
