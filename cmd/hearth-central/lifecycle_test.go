package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guardianai/hearth/central/fleet"
	"github.com/guardianai/hearth/central/store"
)

// Ensure that the lifecycle commands rotate, revoke, detach, re-attach and
// remove, each audited on stderr, and refuse a destructive one without
// --yes.
func TestCLI_Lifecycle(t *testing.T) {
	db, home := cliSmiths(t)
	id := home["home_id"]
	if out, _, code := cli(t, "child", "add", "--home", id, "--hash", "kid-1", "--name", "Ada"); code != 0 || out != "kid-1\n" {
		t.Fatalf("child add --name: %d %q", code, out)
	}
	if _, errs, code := cli(t, "child", "add", "--home", id, "--hash", "kid-2", "--name", "A\tB"); code != 1 || !strings.Contains(errs, "control characters") {
		t.Fatalf("child add with a tab in the name: %d %q", code, errs)
	}

	var rot map[string]string
	cliJSON(t, &rot, "home", "rotate-token", "--json", "--grace", "1h", id)
	if len(rot["token"]) < 32 || rot["token"] == home["token"] {
		t.Fatalf("rotate-token --json: %v", rot)
	}
	st := openCLIStore(t, db)
	if _, err := st.HomeByGraceToken(context.Background(), home["token"]); err != nil {
		t.Fatalf("old token within --grace: %v", err)
	}
	var homes []HomeJSON
	cliJSON(t, &homes, "home", "list", "--json")
	if homes[0].GraceUntil == nil || homes[0].Revoked || homes[0].BacklogMessages != nil {
		t.Fatalf("home list after a rotation with grace: %+v", homes[0])
	}

	_, errs, code := cli(t, "home", "revoke", id)
	if code != 0 || !strings.Contains(errs, fleet.AuditRevoke) || !strings.Contains(errs, "actor=cli") {
		t.Fatalf("home revoke: %d, stderr %q (want the audit line)", code, errs)
	}
	if _, err := st.HomeByToken(context.Background(), rot["token"]); !errors.Is(err, store.ErrUnauthorized) {
		t.Fatalf("token after revoke: %v", err)
	}
	if out, _, _ := cli(t, "home", "list"); !strings.Contains(out, "revoked") || !strings.Contains(out, "EDGE") {
		t.Fatalf("home list after revoke:\n%s", out)
	}

	if out, errs, code := cli(t, "child", "remove", "--home", id, "kid-1"); code != 0 || !strings.Contains(out, "detached") || !strings.Contains(errs, fleet.AuditDetachChild) {
		t.Fatalf("detach: %d %q %q", code, out, errs)
	}
	if out, _, _ := cli(t, "child", "list", "--home", id); strings.Contains(out, "kid-1") {
		t.Fatalf("child list after detach:\n%s", out)
	}
	if homes, known, err := st.ChildHomes(context.Background(), "kid-1"); err != nil || !known || len(homes) != 0 {
		t.Fatalf("detached child: homes %v known %v err %v, want kept in no home", homes, known, err)
	}
	if _, errs, code := cli(t, "child", "remove", "kid-1"); code != 2 || !strings.Contains(errs, "--home") {
		t.Fatalf("detach without --home: %d %q", code, errs)
	}
	if out, _, code := cli(t, "child", "add", "--home", id, "--hash", "kid-1"); code != 0 || out != "kid-1\n" {
		t.Fatalf("child add of the detached child: %d %q", code, out)
	}
	if out, _, _ := cli(t, "child", "list", "--home", id); !strings.Contains(out, "kid-1") {
		t.Fatalf("child list after re-attaching:\n%s", out)
	}
	if _, errs, code := cli(t, "child", "remove", "--erase-data", "--yes", "kid-1"); code != 1 || !strings.Contains(errs, "--home") {
		t.Fatalf("erase of a child in a home without --home: %d %q", code, errs)
	}
	if _, errs, code := cli(t, "child", "remove", "--home", id, "--erase-data", "kid-1"); code != 2 || !strings.Contains(errs, "--yes") {
		t.Fatalf("erase without --yes: %d %q", code, errs)
	}
	if _, errs, code := cli(t, "child", "remove", "--home", "h-other", "--erase-data", "--yes", "kid-1"); code != 1 || !strings.Contains(errs, "has no child") {
		t.Fatalf("erase naming the wrong home: %d %q", code, errs)
	}
	if out, errs, code := cli(t, "child", "remove", "--home", id, "--erase-data", "--yes", "kid-1"); code != 0 || !strings.Contains(out, "removed") || !strings.Contains(errs, fleet.AuditEraseChild) {
		t.Fatalf("erase: %d %q %q", code, out, errs)
	}
	if _, err := st.AddChild(context.Background(), id, "kid-3"); err != nil {
		t.Fatal(err)
	}
	if _, _, code := cli(t, "child", "remove", "--home", id, "kid-3"); code != 0 {
		t.Fatalf("detach kid-3: %d", code)
	}
	if out, errs, code := cli(t, "child", "remove", "--erase-data", "--yes", "kid-3"); code != 0 || !strings.Contains(out, "removed") || !strings.Contains(errs, fleet.AuditEraseChild) {
		t.Fatalf("erase of a detached child by its hash: %d %q %q", code, out, errs)
	}
	if _, known, _ := st.ChildHomes(context.Background(), "kid-3"); known {
		t.Fatal("the erased detached child is still known")
	}
	if _, errs, code := cli(t, "home", "remove", id); code != 2 || !strings.Contains(errs, "--yes") {
		t.Fatalf("home remove without --yes: %d %q", code, errs)
	}
	if _, errs, code := cli(t, "home", "remove", "--yes", id); code != 0 || !strings.Contains(errs, fleet.AuditRemoveHome) {
		t.Fatalf("home remove: %d %q", code, errs)
	}
	if _, errs, code := cli(t, "home", "rotate-token", id); code != 1 || !strings.Contains(errs, "no home") {
		t.Fatalf("rotate a removed home: %d %q", code, errs)
	}
}

// cliSmiths points the commands at a new SQLite database (no config file)
// holding one home, "The Smiths"; it returns the database and home add's
// answer (home_id, token).
func cliSmiths(t *testing.T) (db string, home map[string]string) {
	t.Helper()
	t.Setenv("HEARTH_CONFIG", "")
	db = "sqlite://" + filepath.Join(t.TempDir(), "c.db")
	t.Setenv("HEARTH_DB", db)
	cliJSON(t, &home, "home", "add", "--json", "The Smiths")
	return db, home
}

func openCLIStore(t *testing.T, db string) store.Store {
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
