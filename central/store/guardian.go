package store

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/guardianai/hearth"
)

// The schemas a store can write. SchemaHearth is hearth's own tables;
// SchemaGuardianAI is the GuardianAI dashboard's Django tables, which its
// parents' dashboard reads, with hearth's own state in hearth_ tables.
const (
	SchemaHearth     = "hearth"
	SchemaGuardianAI = "guardianai"
)

// ErrUnknownChild means the GuardianAI database holds no accounts_child
// row with that child_hash: hearth never creates children there.
var ErrUnknownChild = errors.New("no such child")

// ErrSchemaMismatch means the database lacks a Django table or column the
// GuardianAI schema writes: it was not made by GuardianAI's migrations.
var ErrSchemaMismatch = errors.New("not a GuardianAI database")

// checkSchema validates Options.Schema.
func checkSchema(s string) error {
	switch s {
	case "", SchemaHearth, SchemaGuardianAI:
		return nil
	}
	return fmt.Errorf("%w: schema %q: want %q or %q", ErrInvalid, s, SchemaHearth, SchemaGuardianAI)
}

// djangoColumns are the Django tables and the columns of each that the
// GuardianAI schema reads or writes; migrate and every open check them,
// since the dashboard's own migrations may change them under hearth.
var djangoColumns = []struct {
	table string
	cols  []string
}{
	{"accounts_child", []string{"id", "child_hash", "first_name"}},
	{"backend_app", []string{"id", "domain", "app_name", "icon_url", "blocked_count"}},
	{"backend_screentime", []string{"id", "date", "total_screen_time", "app_wise_data", "created", "updated", "child_id"}},
	{"backend_appscreentime", []string{"id", "hour", "seconds", "created", "updated", "app_id", "screen_time_id"}},
	{"backend_locationhistory", []string{"id", "timestamp", "latitude", "longitude", "created", "child_id"}},
	{"backend_siteaccesslog", []string{"id", "timestamp", "url", "accessed", "created", "child_id"}},
}

// missingDjango names what the database lacks of djangoColumns, given the
// columns of each table it has (a table absent has no entry); "" when
// nothing is missing.
func missingDjango(have map[string][]string) string {
	var missing []string
	for _, t := range djangoColumns {
		cols, ok := have[t.table]
		if !ok {
			missing = append(missing, "table "+t.table)
			continue
		}
		for _, c := range t.cols {
			if !slices.Contains(cols, c) {
				missing = append(missing, "column "+t.table+"."+c)
			}
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return strings.Join(missing, ", ")
}

// schemaMismatch is the refusal for a database without GuardianAI's tables.
func schemaMismatch(missing string) error {
	return fmt.Errorf("%w: missing %s; run the dashboard's own migrations (python manage.py migrate) first, or use --schema hearth", ErrSchemaMismatch, missing)
}

// appName is the name the seed gave an app it could not look up on the
// Play Store: Python's str.title() of the part of the id after the last
// dot (com.example.app1 → App1, app2x → App2X, my_app → My_App).
func appName(domain string) string {
	last := domain[strings.LastIndexByte(domain, '.')+1:]
	return pyTitle(last)
}

// pyTitle is Python's str.title(): a cased letter is upper (title) case
// after an uncased character or at the start, lower case after a cased one.
func pyTitle(s string) string {
	var b strings.Builder
	prevCased := false
	for _, r := range s {
		cased := unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r)
		switch {
		case cased && prevCased:
			b.WriteRune(unicode.ToLower(r))
		case cased:
			b.WriteRune(unicode.ToTitle(r))
		default:
			b.WriteRune(r)
		}
		prevCased = cased
	}
	return b.String()
}

// appsJSON is the canonical JSON of a day's validated hours as
// backend_screentime.app_wise_data holds it: apps and hours in order,
// integer seconds, no spaces ({"app":{"9":1800}}).
func appsJSON(apps map[string]map[int]int64) string {
	names := make([]string, 0, len(apps))
	for a := range apps {
		names = append(names, a)
	}
	slices.Sort(names)
	buf := []byte{'{'}
	for i, a := range names {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, a)
		buf = append(buf, ':', '{')
		hours := make([]int, 0, len(apps[a]))
		for h := range apps[a] {
			hours = append(hours, h)
		}
		slices.Sort(hours)
		for j, h := range hours {
			if j > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, '"')
			buf = strconv.AppendInt(buf, int64(h), 10)
			buf = append(buf, '"', ':')
			buf = strconv.AppendInt(buf, apps[a][h], 10)
		}
		buf = append(buf, '}')
	}
	return string(append(buf, '}'))
}

// djangoLayout is how Django's SQLite backend writes an aware datetime:
// str() of the naive UTC value, with microseconds only when there are any.
// Its text order is time order (a shorter value is a prefix of the longer).
const djangoLayout = "2006-01-02 15:04:05.999999"

// fmtDjango formats t as Django writes a DateTimeField on SQLite. Unlike
// ".999999", Python always writes six digits when microseconds are not 0.
func fmtDjango(t time.Time) string {
	t = micro(t)
	if t.Nanosecond() == 0 {
		return t.Format("2006-01-02 15:04:05")
	}
	return t.Format("2006-01-02 15:04:05.000000")
}

// parseDjango reads a DateTimeField as Django's SQLite backend stores it
// (also accepting a "T" separator and a UTC offset, as Django does).
func parseDjango(s string) (time.Time, error) {
	for _, l := range []string{"2006-01-02 15:04:05.999999", "2006-01-02T15:04:05.999999", "2006-01-02 15:04:05.999999Z07:00", "2006-01-02T15:04:05.999999Z07:00"} {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("datetime %q is not in Django's format", s)
}

// notHome stands for "known, but not a child of this home" in owners: it
// is never a home id.
const notHome = "\x00"

// distinctApps returns the app ids of the days and their hours, each
// once, sorted: the seed created an App for every id of app_wise_data,
// even one without hours.
func distinctApps(r rows) []string {
	out := make([]string, 0, 16)
	for _, d := range r.days {
		out = append(out, d.appIDs...)
	}
	for _, h := range r.hours {
		out = append(out, h.app)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

var _ = hearth.DateLayout

// App is one backend_app row of the GuardianAI schema.
type App struct {
	Domain  string `json:"domain"`
	Name    string `json:"app_name"`
	IconURL string `json:"icon_url"`
}

// Unnamed reports whether the app still has the name and the empty icon
// hearth (or the seed, when the Play Store did not answer) gave it: the
// dashboard has not filled them from the Play Store yet.
func (a App) Unnamed() bool { return a.IconURL == "" && a.Name == appName(a.Domain) }

// appsSQL lists backend_app, by domain.
const appsSQL = `SELECT domain, app_name, icon_url FROM backend_app ORDER BY domain`
