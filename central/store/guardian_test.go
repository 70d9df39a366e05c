package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guardianai/hearth/central/store/pgtest"
)

// gaSkip are the conformance cases that do not apply to the GuardianAI
// schema, with the reason and the test that stands in for each.
var gaSkip = map[string]string{
	"Children": "hearth makes no children there (no generated hash); see TestGuardianAI_AttachChild",
}

// Ensure that the GuardianAI schema keeps the Store contract: the same
// suite as hearth's own schema, on a database made by GuardianAI's
// migrations.
func TestStore_Conformance_GuardianAI(t *testing.T) {
	for _, e := range gaEngines {
		t.Run(e.name, func(t *testing.T) {
			e.require(t)
			for _, c := range conformance {
				t.Run(c.name, func(t *testing.T) {
					if why, ok := gaSkip[c.name]; ok {
						t.Skip(why)
					}
					c.fn(t, newFixture(t, e))
				})
			}
		})
	}
}

// gaFixture is a GuardianAI-schema fixture on engine e.
func gaFixture(t *testing.T, e engine) *fixture {
	t.Helper()
	return newFixture(t, e)
}

// forEachGAEngine runs fn as a subtest per GuardianAI engine.
func forEachGAEngine(t *testing.T, fn func(t *testing.T, e engine)) {
	for _, e := range gaEngines {
		t.Run(e.name, func(t *testing.T) {
			e.require(t)
			fn(t, e)
		})
	}
}

// Ensure that opening a database without GuardianAI's tables is refused,
// naming what is missing, and creates nothing.
func TestGuardianAI_RefusesWithoutDjangoTables(t *testing.T) {
	ctx := context.Background()
	opts := testOptions()
	opts.Schema = SchemaGuardianAI
	for _, c := range []struct {
		name string
		dsn  func(t *testing.T) string
		want []string
	}{
		{"SQLite_no_file", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "none.db") },
			[]string{"no such file", "DATABASES"}},
		{"SQLite_empty", func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "empty.db")
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return "sqlite://" + path
		}, []string{"table accounts_child", "table backend_screentime", "table backend_siteaccesslog", "manage.py migrate"}},
		{"SQLite_hearth_schema", func(t *testing.T) string {
			dsn := engines[0].dsn(t)
			open(t, dsn, testOptions()).Close()
			return dsn
		}, []string{"table accounts_child", "manage.py migrate"}},
		{"SQLite_column_dropped", func(t *testing.T) string {
			dsn := gaSQLiteDSN(t)
			db, err := openSQLiteConns(ctx, strings.TrimPrefix(dsn, "sqlite://"), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.w.Exec(`ALTER TABLE backend_app DROP COLUMN icon_url`); err != nil {
				t.Fatal(err)
			}
			return dsn
		}, []string{"column backend_app.icon_url"}},
		{"Postgres_empty", func(t *testing.T) string { return pgtest.DSN(t) },
			[]string{"table accounts_child", "table backend_app", "manage.py migrate"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dsn := c.dsn(t)
			s, err := OpenWith(ctx, dsn, opts)
			if err == nil {
				s.Close()
				t.Fatal("opened a database without GuardianAI's tables")
			}
			if !errors.Is(err, ErrSchemaMismatch) {
				t.Fatalf("error %v, want ErrSchemaMismatch", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

// Ensure that a bad schema name is refused.
func TestOpen_BadSchema(t *testing.T) {
	_, err := OpenWith(context.Background(), engines[0].dsn(t), Options{Schema: "django"})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "guardianai") {
		t.Fatalf("schema django: %v, want ErrInvalid naming the schemas", err)
	}
}

// Ensure that hearth's tables hold no index, trigger or foreign key on or
// to a Django table: Django rebuilds its SQLite tables and deletes in
// Python, and such a link would break it.
func TestGuardianAI_NoLinksToDjangoTables(t *testing.T) {
	f := gaFixture(t, gaEngines[0])
	q := rawQuerier(t, f.s)
	django := map[string]bool{}
	for _, st := range djangoSchema(t, "sqlite") {
		if m := createdName.FindStringSubmatch(st); m != nil {
			django[m[1]] = true
		}
	}
	for _, r := range q(`SELECT type, name, tbl_name FROM sqlite_master WHERE type IN ('index', 'trigger', 'table')`) {
		if strings.HasPrefix(r[1], "hearth_") || strings.HasPrefix(r[1], "sqlite_autoindex_hearth_") {
			if !strings.HasPrefix(r[2], "hearth_") {
				t.Errorf("%s %s is on Django's table %s", r[0], r[1], r[2])
			}
			continue
		}
		if !django[r[1]] && r[1] != "sqlite_sequence" && !strings.HasPrefix(r[1], "sqlite_autoindex_") {
			t.Errorf("%s %s on %s: neither Django's nor hearth_", r[0], r[1], r[2])
		}
	}
	for _, r := range q(`SELECT m.name, f."table" FROM sqlite_master AS m, pragma_foreign_key_list(m.name) AS f WHERE m.name LIKE 'hearth\_%' ESCAPE '\'`) {
		if !strings.HasPrefix(r[1], "hearth_") {
			t.Errorf("%s has a foreign key to %s", r[0], r[1])
		}
	}
}

var createdName = regexp.MustCompile(`^CREATE (?:UNIQUE )?(?:TABLE|INDEX) "([^"]+)"`)

// Ensure that child add attaches existing GuardianAI children only, to any
// number of homes, and that phones straight to central are accepted for
// every accounts_child row while a home's batch takes only its own.
func TestGuardianAI_AttachChild(t *testing.T) {
	forEachGAEngine(t, func(t *testing.T, e engine) {
		ctx := context.Background()
		f := gaFixture(t, e)
		a := f.s.(interface {
			AttachChild(ctx context.Context, homeID, hash, name string) (string, error)
		})
		if _, err := a.AttachChild(ctx, f.homeA, "", ""); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "child_hash") {
			t.Errorf("no hash: %v, want ErrInvalid naming child_hash", err)
		}
		if _, err := a.AttachChild(ctx, f.homeA, "nobody", ""); !errors.Is(err, ErrUnknownChild) || !strings.Contains(err.Error(), "dashboard") {
			t.Errorf("unknown child: %v, want ErrUnknownChild", err)
		}
		if _, err := a.AttachChild(ctx, "h-none", f.a1, ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown home: %v, want ErrNotFound", err)
		}
		if _, err := a.AttachChild(ctx, f.homeA, f.a1, ""); !errors.Is(err, ErrExists) {
			t.Errorf("again: %v, want ErrExists", err)
		}
		if n, err := a.AttachChild(ctx, f.homeB, f.a1, ""); err != nil || n != "first-child-a1" {
			t.Fatalf("second home: %q, %v; want first_name", n, err)
		}
		rawExec(t, f.s, `INSERT INTO accounts_child (password, is_superuser, child_hash, first_name, last_name, is_active, date_joined, restricted_apps)
			VALUES ('!', false, 'loner', 'Lo', '', false, '2025-01-01 00:00:00', '[]')`)
		if n, err := a.AttachChild(ctx, f.homeB, "loner", "Named"); err != nil || n != "Named" {
			t.Fatalf("--name: %q, %v", n, err)
		}
		homes, ok, err := f.s.ChildHomes(ctx, f.a1)
		want := []string{f.homeA, f.homeB}
		slices.Sort(want)
		if err != nil || !ok || !slices.Equal(homes, want) {
			t.Fatalf("ChildHomes(a1) = %v, %v, %v; want %v", homes, ok, err, want)
		}
		got, err := f.s.Children(ctx, f.homeB)
		if err != nil || !slices.Equal(got, []string{f.a1, f.b1, "loner"}) {
			t.Fatalf("Children(B) = %v, %v", got, err)
		}
		rawExec(t, f.s, `INSERT INTO accounts_child (password, is_superuser, child_hash, first_name, last_name, is_active, date_joined, restricted_apps)
			VALUES ('!', false, 'homeless', 'H', '', false, '2025-01-01 00:00:00', '[]')`)
		if homes, ok, err := f.s.ChildHomes(ctx, "homeless"); !ok || err != nil || len(homes) != 0 {
			t.Fatalf("ChildHomes(homeless) = %v, %v, %v; want known, no home", homes, ok, err)
		}
		if _, ok, _ := f.s.ChildHomes(ctx, "nobody"); ok {
			t.Fatal("ChildHomes(nobody): known")
		}
		// Straight to central: any accounts_child row, attached or not, active or not.
		applyOK(t, f.s, "", locMsg("homeless", at(-time.Hour), 1, 2, at(0)))
		// A home's batch: its own children only (a1 is in both homes now).
		res := apply(t, f.s, f.homeA, locMsg("homeless", at(-time.Hour), 1, 2, at(0)), locMsg(f.a1, at(-time.Hour), 1, 2, at(0)),
			locMsg("nobody", at(-time.Hour), 1, 2, at(0)))
		if res[0].Code != CodeForeignChild || res[1].Status != StatusOK || res[2].Code != CodeUnknownChild {
			t.Fatalf("home batch: %+v", res)
		}
		applyOK(t, f.s, f.homeB, locMsg(f.a1, at(-time.Minute), 1, 2, at(0)))
		// ingest never creates or changes children.
		if n := rawQuerier(t, f.s)(`SELECT count(*) FROM accounts_child`)[0][0]; n != "5" {
			t.Fatalf("accounts_child has %s rows, want 5", n)
		}
	})
}

// Ensure that app names are Python's str.title() of the id's last part.
func TestAppName_PythonTitle(t *testing.T) {
	for in, want := range map[string]string{
		"com.example.app1": "App1", "app2x": "App2X", "my_app": "My_App", "com.example.": "",
		"com.WhatsApp": "Whatsapp", "org.mozilla.firefox": "Firefox", "x.hello world": "Hello World",
		"a.they're": "They'Re", "a.ünïcode": "Ünïcode", "com.app-name": "App-Name", "": "",
	} {
		if got := appName(in); got != want {
			t.Errorf("appName(%q) = %q, want %q", in, got, want)
		}
	}
}

// Ensure that the hours are kept as the canonical JSON the issue names.
func TestAppsJSON_Canonical(t *testing.T) {
	got := appsJSON(map[string]map[int]int64{"b": {10: 5, 9: 1800}, "a\"": {0: 0}})
	if want := `{"a\"":{"0":0},"b":{"9":1800,"10":5}}`; got != want {
		t.Fatalf("appsJSON = %s, want %s", got, want)
	}
}
