package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guardianai/hearth/internal/owner"
)

// Ensure that home add-reader prints a reader token once, as documented,
// and refuses an unknown home.
func TestCLI_AddReader(t *testing.T) {
	t.Setenv("HEARTH_CONFIG", "")
	db := "sqlite://" + filepath.Join(t.TempDir(), "c.db")
	var home map[string]string
	cliJSON(t, &home, "home", "add", "--json", "--db", db, "The Smiths")
	var reader map[string]string
	cliJSON(t, &reader, "home", "add-reader", "--json", "--db", db, home["home_id"])
	if len(reader) != 3 || reader["home_id"] != home["home_id"] || !strings.HasPrefix(reader["reader_id"], "r") ||
		len(reader["token"]) < 32 || reader["token"] == home["token"] {
		t.Fatalf("home add-reader --json: %v", reader)
	}
	out, errs, code := cli(t, "home", "add-reader", "--db", db, home["home_id"])
	if code != 0 || !strings.Contains(out, "token:") || !strings.Contains(errs, "shown only this once") {
		t.Fatalf("home add-reader: %d %q %q", code, out, errs)
	}
	if _, errs, code := cli(t, "home", "add-reader", "--db", db, "h-nope"); code != 1 || !strings.Contains(errs, `no home "h-nope"`) {
		t.Fatalf("unknown home: %d %q", code, errs)
	}
	if _, errs, code := cli(t, "home", "add-reader", "--db", db); code != 2 || !strings.Contains(errs, "one argument") {
		t.Fatalf("no home id: %d %q", code, errs)
	}
	if _, errs, code := cli(t, "home", "delete"); code != 2 || !strings.Contains(errs, "add, add-reader, list, remove, revoke or rotate-token") {
		t.Fatalf("unknown subcommand: %d %q", code, errs)
	}
}

// otherUsersDir returns a directory that belongs to another user than the
// one running the test, and that user's uid: as root, a fresh directory
// given to nobody (uid 65534); otherwise /, which belongs to root.
func otherUsersDir(t *testing.T) (string, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		return "/", 0
	}
	dir := filepath.Join(t.TempDir(), "central")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	return dir, 65534
}

// Ensure that every command that may create or change a SQLite database
// refuses to run as another user than the owner of its directory (root
// too), says whom to run as, and creates nothing.
func TestCLI_RefusesOtherUsersDatabase(t *testing.T) {
	t.Setenv("HEARTH_CONFIG", "")
	dir, uid := otherUsersDir(t)
	who := owner.Name(uid)
	file := filepath.Join(dir, "hearth-owner-test.db")
	db := "sqlite://" + file
	for _, args := range [][]string{
		{"migrate", "--db", db},
		{"home", "add", "--db", db, "The Smiths"},
		{"home", "add-reader", "--db", db, "h1"},
		{"child", "add", "--db", db, "--home", "h1"},
		{"home", "list", "--db", db},
		{"stats", "--db", db},
		{"serve", "--db", db, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"},
	} {
		_, errs, code := cli(t, args...)
		want := "run as " + who + ": sudo -u " + sudoUser(uid, who) + " hearth-central " + args[0]
		if code != 1 || !strings.Contains(errs, "belongs to "+who) || !strings.Contains(errs, want) {
			t.Errorf("%q: exit %d, %q; want a refusal with %q", args, code, errs, want)
		}
	}
	if _, errs, _ := cli(t, "home", "add", "--db", db, "The Smiths"); !strings.Contains(errs, "'The Smiths'") {
		t.Errorf("the suggested command does not quote the home's name: %q", errs)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("a refused command created %s: %v", file, err)
	}
}
