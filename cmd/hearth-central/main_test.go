package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cli runs the command line and returns stdout, stderr and the exit code.
func cli(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	code := exitCode(err, &errb)
	return out.String(), errb.String(), code
}

func cliJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out, errs, code := cli(t, args...)
	if code != 0 {
		t.Fatalf("%q: exit %d: %s", args, code, errs)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%q: output %q: %v", args, out, err)
	}
}

// Ensure that homes and children are created and listed, with exactly the
// documented JSON.
func TestCLI_HomesAndChildren(t *testing.T) {
	t.Setenv("HEARTH_CONFIG", "")
	db := "sqlite://" + filepath.Join(t.TempDir(), "c.db")
	var home map[string]string
	cliJSON(t, &home, "home", "add", "--json", "--db", db, "The Smiths")
	if len(home) != 2 || !strings.HasPrefix(home["home_id"], "h") || len(home["token"]) < 32 {
		t.Fatalf("home add --json: %v", home)
	}
	var child map[string]string
	cliJSON(t, &child, "child", "add", "--json", "--db", db, "--home", home["home_id"])
	if len(child) != 1 || len(child["child_hash"]) < 32 {
		t.Fatalf("child add --json: %v", child)
	}
	out, _, code := cli(t, "child", "add", "--db", db, "--home", home["home_id"], "--hash", "kid-1")
	if code != 0 || out != "kid-1\n" {
		t.Fatalf("child add: %d %q", code, out)
	}
	if _, errs, code := cli(t, "child", "add", "--db", db, "--home", home["home_id"], "--hash", "kid-1"); code != 1 || !strings.Contains(errs, "taken") {
		t.Fatalf("duplicate hash: %d %q", code, errs)
	}
	if _, errs, code := cli(t, "child", "add", "--db", db, "--home", "h-nope"); code != 1 || !strings.Contains(errs, "no home") {
		t.Fatalf("unknown home: %d %q", code, errs)
	}
	var homes []HomeJSON
	cliJSON(t, &homes, "home", "list", "--json", "--db", db)
	if len(homes) != 1 || homes[0].HomeID != home["home_id"] || homes[0].Name != "The Smiths" || homes[0].Children != 2 || homes[0].LastSeen != nil {
		t.Fatalf("home list --json: %+v", homes)
	}
	out, _, code = cli(t, "home", "list", "--db", db)
	if code != 0 || !strings.Contains(out, "CLOCK OFFSET") || !strings.Contains(out, "The Smiths") || !strings.Contains(out, "never") {
		t.Fatalf("home list: %d\n%s", code, out)
	}
	var stats map[string]int64
	t.Setenv("HEARTH_DB", db) // the variable works as well as the flag
	cliJSON(t, &stats, "stats")
	for k, want := range map[string]int64{"homes": 1, "children": 2, "screen_time": 0, "app_screen_time": 0, "locations": 0, "site_access": 0} {
		if got, ok := stats[k]; !ok || got != want {
			t.Errorf("stats[%s] = %d (present %v), want %d", k, got, ok, want)
		}
	}
	var hashes []string
	cliJSON(t, &hashes, "child", "list", "--json", "--home", home["home_id"])
	if len(hashes) != 2 {
		t.Fatalf("child list: %v", hashes)
	}
	if out, _, code := cli(t, "migrate"); code != 0 || !strings.Contains(out, "current schema") {
		t.Fatalf("migrate: %d %q", code, out)
	}
}

// Ensure that usage errors exit 2 with a reason, failures 1, help 0.
func TestCLI_ExitCodes(t *testing.T) {
	t.Setenv("HEARTH_CONFIG", "")
	db := "sqlite://" + filepath.Join(t.TempDir(), "c.db")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "no command"},
		{[]string{"fly"}, 2, `unknown command "fly"`},
		{[]string{"home"}, 2, "needs a subcommand"},
		{[]string{"home", "delete"}, 2, "unknown command"},
		{[]string{"home", "add", "--db", db}, 2, "one argument"},
		{[]string{"home", "add", "--db", db, "a", "b"}, 2, "one argument"},
		{[]string{"home", "add", "--nope", "a"}, 2, "not defined: -nope"},
		{[]string{"home", "list", "--db", db, "extra"}, 2, "no arguments"},
		{[]string{"child", "add", "--db", db}, 2, "needs --home"},
		{[]string{"serve", "--max-conns", "lots"}, 2, "max-conns"},
		{[]string{"serve", "--config", "", "extra"}, 2, "no arguments"},
		{[]string{"stats", "--db", "mysql://x"}, 1, "sqlite:// or postgres://"},
		{[]string{"serve", "--config", "", "--db", db, "--retention-days", "0", "--check-config"}, 1, "retention_days"},
		{[]string{"serve", "--config", filepath.Join(t.TempDir(), "missing.yaml")}, 1, "missing.yaml"},
		{[]string{"home", "add", "-h"}, 0, "Usage: hearth-central home add"},
		{[]string{"help"}, 0, ""},
	} {
		out, errs, code := cli(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.want) {
			t.Errorf("%q: exit %d, output %q; want exit %d and %q", tc.args, code, out+errs, tc.code, tc.want)
		}
	}
}

// Ensure that --check-config validates and prints the effective settings
// without secrets.
func TestCLI_CheckConfig(t *testing.T) {
	t.Setenv("HEARTH_CONFIG", "")
	t.Setenv("HEARTH_ADMIN_TOKEN", "a-very-secret-admin-token")
	out, errs, code := cli(t, "serve", "--db", "postgres://u:pw@db.example/hearth", "--listen", "127.0.0.1:9", "--check-config")
	if code != 0 || !strings.Contains(out, "configuration ok") || !strings.Contains(out, "listen: 127.0.0.1:9") ||
		!strings.Contains(out, "admin_token: set") || strings.Contains(out, "pw") || strings.Contains(out, "very-secret") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
}

// Ensure that flags and arguments are told apart without parsing twice.
func TestSplitArgs(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Bool("json", false, "")
	fs.String("home", "", "")
	for _, tc := range []struct {
		args        []string
		flags, rest int
		err         bool
	}{
		{[]string{"--json", "NAME"}, 1, 1, false},
		{[]string{"--home", "h1", "--json"}, 3, 0, false},
		{[]string{"--config", "f.yaml", "--json", "N", "--json"}, 3, 2, false},
		{[]string{"--", "--json"}, 1, 1, false},
		{[]string{"--nope"}, 0, 0, true},
	} {
		flags, rest, err := splitArgs(fs, tc.args)
		if (err != nil) != tc.err || len(flags) != tc.flags || len(rest) != tc.rest {
			t.Errorf("%q: flags %q rest %q err %v", tc.args, flags, rest, err)
		}
	}
	if _, _, err := splitArgs(fs, []string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

// Ensure that the YAML file sets the database, and a flag overrides it.
func TestCLI_ConfigFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "central.yaml")
	yaml := "db: sqlite://" + filepath.Join(dir, "from-file.db") + "\nretention_days: 30\nmax_batch_bytes: 1MiB\nadmin_token: operator-token-0123456789\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var home map[string]string
	cliJSON(t, &home, "home", "add", "--json", "--config", file, "X")
	var stats map[string]int64
	cliJSON(t, &stats, "stats", "--config", file)
	if stats["homes"] != 1 {
		t.Fatalf("stats via the file's db: %v", stats)
	}
	cliJSON(t, &stats, "stats", "--config", file, "--db", "sqlite://"+filepath.Join(dir, "other.db"))
	if stats["homes"] != 0 {
		t.Fatalf("stats via --db: %v", stats)
	}
	out, errs, code := cli(t, "serve", "--config", file, "--check-config")
	if code != 0 || !strings.Contains(out, "retention_days: 30") || !strings.Contains(out, "max_batch_bytes: 1048576") || !strings.Contains(out, "from-file.db") {
		t.Fatalf("check-config: %d\n%s%s", code, out, errs)
	}
	if err := os.WriteFile(file, []byte("lisen: :1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := cli(t, "stats", "--config", file); code != 1 || !strings.Contains(errs, "lisen") {
		t.Fatalf("typo in the file: %d %s", code, errs)
	}
}
