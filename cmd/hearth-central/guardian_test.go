package main

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guardianai/hearth/internal/owner"
	_ "modernc.org/sqlite"
)

// guardianDB makes a SQLite database as GuardianAI's own migrations make it
// (the project's copy in testdata/guardianai) with one child, kid-1.
func guardianDB(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "guardianai", "schema.sqlite.sql"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "db.sqlite3")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, st := range strings.Split(string(b), ";\n") {
		if _, err := db.ExecContext(context.Background(), st); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
	}
	if _, err := db.Exec(`INSERT INTO accounts_child (password, is_superuser, child_hash, first_name, last_name, is_active, date_joined, restricted_apps)
		VALUES ('!', 0, 'kid-1', 'Ada', '', 1, '2025-01-01 00:00:00', '[]')`); err != nil {
		t.Fatal(err)
	}
	return "sqlite://" + path
}

// Ensure that migrate --schema guardianai refuses a database without the
// dashboard's tables, saying which, and that child add attaches existing
// GuardianAI children only, --hash required.
func TestCLI_GuardianAI(t *testing.T) {
	t.Setenv("HEARTH_CONFIG", "")
	emptyFile := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(emptyFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	empty := "sqlite://" + emptyFile
	if _, errs, code := cli(t, "migrate", "--db", empty+".missing", "--schema", "guardianai"); code != 1 || !strings.Contains(errs, "no such file") {
		t.Fatalf("migrate on a missing file: %d %q", code, errs)
	}
	if _, errs, code := cli(t, "migrate", "--db", empty, "--schema", "guardianai"); code != 1 ||
		!strings.Contains(errs, "missing table accounts_child") || !strings.Contains(errs, "manage.py migrate") {
		t.Fatalf("migrate on an empty file: %d %q", code, errs)
	}
	if _, errs, code := cli(t, "serve", "--db", empty, "--schema", "guardianai", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"); code != 1 ||
		!strings.Contains(errs, "missing table accounts_child") {
		t.Fatalf("serve on an empty file: %d %q", code, errs)
	}
	if _, errs, code := cli(t, "migrate", "--db", empty, "--schema", "django"); code != 1 || !strings.Contains(errs, "schema") {
		t.Fatalf("bad schema: %d %q", code, errs)
	}
	db := guardianDB(t)
	t.Setenv("HEARTH_SCHEMA", "guardianai")
	if out, errs, code := cli(t, "migrate", "--db", db); code != 0 || !strings.Contains(out, "current schema (guardianai)") {
		t.Fatalf("migrate: %d %q %q", code, out, errs)
	}
	var home map[string]string
	cliJSON(t, &home, "home", "add", "--json", "--db", db, "The Smiths")
	h := home["home_id"]
	if _, errs, code := cli(t, "child", "add", "--db", db, "--home", h); code != 2 || !strings.Contains(errs, "--hash") {
		t.Fatalf("no --hash: %d %q", code, errs)
	}
	if _, errs, code := cli(t, "child", "add", "--db", db, "--home", h, "--hash", "kid-2"); code != 1 || !strings.Contains(errs, "no child with child_hash") {
		t.Fatalf("unknown child: %d %q", code, errs)
	}
	if out, errs, code := cli(t, "child", "add", "--db", db, "--home", h, "--hash", "kid-1"); code != 0 || out != "kid-1\tAda\n" {
		t.Fatalf("child add: %d %q %q", code, out, errs)
	}
	if out, _, code := cli(t, "child", "list", "--db", db, "--home", h); code != 0 || out != "kid-1\n" {
		t.Fatalf("child list: %d %q", code, out)
	}
	if _, errs, code := cli(t, "child", "add", "--db", db, "--home", h, "--hash", "kid-1"); code != 1 || !strings.Contains(errs, "already") {
		t.Fatalf("again: %d %q", code, errs)
	}
	// apps --unnamed: the apps hearth created, until the dashboard names them.
	sqlDB, err := sql.Open("sqlite", strings.TrimPrefix(db, "sqlite://"))
	if err != nil {
		t.Fatal(err)
	}
	defer sqlDB.Close()
	if _, err := sqlDB.Exec(`INSERT INTO backend_app (domain, app_name, icon_url, blocked_count) VALUES
		('com.example.app1', 'App1', '', 0), ('com.named', 'Named', 'https://i.example/n.png', 0), ('com.example.renamed', 'Renamed!', '', 0)`); err != nil {
		t.Fatal(err)
	}
	var unnamed []map[string]string
	cliJSON(t, &unnamed, "apps", "--json", "--unnamed", "--db", db)
	if len(unnamed) != 1 || unnamed[0]["domain"] != "com.example.app1" {
		t.Fatalf("apps --unnamed: %v", unnamed)
	}
	if out, _, code := cli(t, "apps", "--db", db); code != 0 || strings.Count(out, "\n") != 4 {
		t.Fatalf("apps: %d %q", code, out)
	}
	if _, errs, code := cli(t, "apps", "--db", db, "--schema", "hearth"); code != 2 || !strings.Contains(errs, "--schema guardianai") {
		t.Fatalf("apps in the hearth schema: %d %q", code, errs)
	}
}

// Ensure that a GuardianAI SQLite directory of another user is accepted
// only when shared through a setgid, group-writable group this process is
// in.
func TestSharedGroup(t *testing.T) {
	in := func(gid int) bool { return gid == 42 }
	for _, c := range []struct {
		mode os.FileMode
		gid  int
		ok   bool
	}{
		{os.ModeDir | os.ModeSetgid | 0o2770, 42, true},
		{os.ModeDir | os.ModeSetgid | 0o770, 42, true},
		{os.ModeDir | 0o770, 42, false},                 // no setgid: new -wal/-shm get hearth's group
		{os.ModeDir | os.ModeSetgid | 0o750, 42, false}, // not group-writable
		{os.ModeDir | os.ModeSetgid | 0o770, 7, false},  // not in the group
	} {
		if got := sharedGroup(owner.File{UID: 1, GID: c.gid, Mode: c.mode}, in); got != c.ok {
			t.Errorf("mode %v gid %d: %v, want %v", c.mode, c.gid, got, c.ok)
		}
	}
}
