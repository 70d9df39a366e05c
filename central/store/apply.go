package store

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/guardianai/hearth"
)

// The rows of one batch, one slice per table. Rows are deduplicated per key
// (the winner as defined by the newer methods) and sorted by key, so that
// one statement never touches a key twice (PostgreSQL's SQLSTATE 21000) and
// concurrent batches lock rows in the same order.
type rows struct {
	days  []dayRow
	hours []hourRow
	locs  []locRow
	sites []siteRow
}

type dayKey struct{ child, date string }

type dayRow struct {
	dayKey
	total int64
	recv  time.Time
	apps  string // the GuardianAI schema's app_wise_data (appsJSON); "" in the hearth schema
	// appIDs are the day's app ids, with hours or not, in the GuardianAI
	// schema: the seed created a backend_app row for each.
	appIDs []string
}

type hourKey struct {
	child, date, app string
	hour             int
}

type hourRow struct {
	hourKey
	secs int64
	recv time.Time
}

type tsKey struct {
	child string
	ts    time.Time // UTC, whole microseconds
}

type locRow struct {
	tsKey
	lat, lon float64
	recv     time.Time
}

type siteKey struct {
	tsKey
	url string
}

type siteRow struct {
	siteKey
	accessed bool
	recv     time.Time
}

// The newer methods define which of two rows with the same key wins: the
// later received_at, and on a tie the larger value. The SQL upserts apply
// the same order with a row comparison, so the final state does not depend
// on the order in which batches arrive, and a replay changes nothing.

func (r dayRow) newer(o dayRow) bool {
	if c := r.recv.Compare(o.recv); c != 0 {
		return c > 0
	}
	if r.total != o.total {
		return r.total > o.total
	}
	return r.apps > o.apps
}

func (r hourRow) newer(o hourRow) bool {
	if c := r.recv.Compare(o.recv); c != 0 {
		return c > 0
	}
	return r.secs > o.secs
}

func (r locRow) newer(o locRow) bool {
	if c := r.recv.Compare(o.recv); c != 0 {
		return c > 0
	}
	if r.lat != o.lat {
		return r.lat > o.lat
	}
	return r.lon > o.lon
}

func (r siteRow) newer(o siteRow) bool {
	if c := r.recv.Compare(o.recv); c != 0 {
		return c > 0
	}
	return r.accessed && !o.accessed
}

// micro truncates t to whole microseconds in UTC, the precision both
// engines store.
func micro(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// owners tells where each child belongs, as looked up in the batch's transaction.
type owners map[string]string // child hash → home id

// parse checks and parses the payloads of msgs. It needs no database, so
// engines call it before they begin the batch's transaction.
func parse(msgs []hearth.Message, opts Options) *parsed {
	p := &parsed{invalid: make([]Result, len(msgs))}
	for i := range msgs {
		if err := p.add(i, &msgs[i], opts); err != nil {
			code := hearth.InvalidCode(err)
			if code == "" {
				code = hearth.CodeInvalid
			}
			p.invalid[i] = rejected(code, err.Error())
		}
	}
	return p
}

// parsed holds the rows of every valid message of a batch; the xOf slices
// tell the message each row came from.
type parsed struct {
	invalid []Result // per message; the zero Result when it is valid
	days    []dayRow
	dayOf   []int
	hours   []hourRow
	hourOf  []int
	locs    []locRow
	locOf   []int
	sites   []siteRow
	siteOf  []int
}

// plan returns one Result per message and the rows to upsert: those of the
// valid messages of children that exist and, when home is not "", belong
// to home. owned tells the home of each known child.
func (p *parsed) plan(home string, msgs []hearth.Message, owned owners) ([]Result, rows) {
	results := make([]Result, len(msgs))
	ok := make([]bool, len(msgs))
	for i := range msgs {
		owner, known := owned[msgs[i].ChildHash]
		switch {
		case !known, home == "" && owner == notHome:
			// notHome without a home: a child of hearth's schema detached
			// from its home is on no roster, central's device listener's too.
			results[i] = rejected(CodeUnknownChild, "unknown child")
		case home != "" && owner != home:
			results[i] = rejected(CodeForeignChild, "child does not belong to this home")
		case p.invalid[i].Status != "":
			results[i] = p.invalid[i]
		default:
			results[i], ok[i] = Result{Status: StatusOK}, true
		}
	}
	return results, rows{
		days:  winners(kept(p.days, p.dayOf, ok), cmpDay),
		hours: winners(kept(p.hours, p.hourOf, ok), cmpHour),
		locs:  winners(kept(p.locs, p.locOf, ok), cmpLoc),
		sites: winners(kept(p.sites, p.siteOf, ok), cmpSite),
	}
}

// plan parses msgs and plans them in one step.
func plan(home string, msgs []hearth.Message, owned owners, opts Options) ([]Result, rows) {
	return parse(msgs, opts).plan(home, msgs, owned)
}

func rejected(code, reason string) Result {
	return Result{Status: StatusRejected, Code: code, Error: reason}
}

// add takes message i's rows; nothing is taken when it is invalid.
func (p *parsed) add(i int, m *hearth.Message, opts Options) error {
	recv := micro(m.ReceivedAt)
	if m.ReceivedAt.IsZero() {
		recv = micro(opts.Now())
	}
	if y := recv.Year(); y < 1 || y > 9999 {
		return &hearth.InvalidError{Code: hearth.CodeInvalid, Field: "received_at", Reason: fmt.Sprintf("year %d is out of range", y)}
	}
	pl, err := payload(m, hearth.Window{Now: recv, MaxAge: opts.Retention, MaxFuture: opts.MaxFuture})
	if err != nil {
		return err
	}
	switch {
	case pl.ScreenTime != nil:
		p.addScreenTime(i, m.ChildHash, pl.ScreenTime, recv, opts.Schema == SchemaGuardianAI)
	case pl.Location != nil:
		p.addLocation(i, m.ChildHash, pl.Location, recv)
	case pl.SiteAccess != nil:
		p.addSiteAccess(i, m.ChildHash, pl.SiteAccess, recv)
	}
	return nil
}

// payload returns the typed payload of m. A message checked by the caller
// carries it; one that holds only Data (a tool, a test) is checked here
// with the same rules, against its received_at.
func payload(m *hearth.Message, w hearth.Window) (hearth.Payload, error) {
	if m.Payload != (hearth.Payload{}) {
		return m.Payload, nil
	}
	c, err := hearth.Check(m.Kind, m.Data, hearth.Rules{Mode: hearth.ModeStrict, Window: w})
	return c.Payload, err
}

// addScreenTime takes a day and its hours; withApps keeps the day's hours
// as JSON too, for the GuardianAI schema's app_wise_data.
func (p *parsed) addScreenTime(i int, child string, st *hearth.ScreenTime, recv time.Time, withApps bool) {
	day := dayRow{dayKey: dayKey{child, st.Date}, total: st.TotalSeconds, recv: recv}
	if withApps {
		day.apps = appsJSON(st.Apps)
		for a := range st.Apps {
			day.appIDs = append(day.appIDs, a)
		}
	}
	p.days = append(p.days, day)
	p.dayOf = append(p.dayOf, i)
	for app, hours := range st.Apps {
		for hour, secs := range hours {
			p.hours = append(p.hours, hourRow{hourKey{child, st.Date, app, hour}, secs, recv})
			p.hourOf = append(p.hourOf, i)
		}
	}
}

func (p *parsed) addLocation(i int, child string, loc *hearth.Location, recv time.Time) {
	p.locs = append(p.locs, locRow{tsKey{child, micro(loc.Timestamp)}, loc.Latitude, loc.Longitude, recv})
	p.locOf = append(p.locOf, i)
}

func (p *parsed) addSiteAccess(i int, child string, sa *hearth.SiteAccess, recv time.Time) {
	for _, v := range sa.Logs {
		p.sites = append(p.sites, siteRow{siteKey{tsKey{child, micro(v.Timestamp)}, v.URL}, v.Accessed, recv})
		p.siteOf = append(p.siteOf, i)
	}
}

// kept returns the rows whose message (of) is ok.
func kept[R any](rs []R, of []int, ok []bool) []R {
	out := make([]R, 0, len(rs))
	for k, r := range rs {
		if ok[of[k]] {
			out = append(out, r)
		}
	}
	return out
}

// winners sorts rs by key and keeps one row per key, the one that wins by
// its newer method. Rows neither of which is newer are equal in every
// stored value, so which of them stays makes no difference.
func winners[R interface{ newer(R) bool }](rs []R, key func(a, b R) int) []R {
	slices.SortFunc(rs, func(a, b R) int {
		if c := key(a, b); c != 0 {
			return c
		}
		switch {
		case a.newer(b):
			return -1
		case b.newer(a):
			return 1
		}
		return 0
	})
	return slices.CompactFunc(rs, func(a, b R) bool { return key(a, b) == 0 })
}

func cmpDay(a, b dayRow) int {
	return cmp.Or(cmp.Compare(a.child, b.child), cmp.Compare(a.date, b.date))
}

func cmpHour(a, b hourRow) int {
	return cmp.Or(cmp.Compare(a.child, b.child), cmp.Compare(a.date, b.date),
		cmp.Compare(a.app, b.app), cmp.Compare(a.hour, b.hour))
}

func cmpLoc(a, b locRow) int { return cmp.Or(cmp.Compare(a.child, b.child), a.ts.Compare(b.ts)) }

func cmpSite(a, b siteRow) int {
	return cmp.Or(cmp.Compare(a.child, b.child), a.ts.Compare(b.ts), cmp.Compare(a.url, b.url))
}

// distinctChildren returns the child hashes of msgs that can exist, each
// once, sorted. A malformed hash is left out (and so rejected as unknown):
// it could not be stored, and PostgreSQL would fail the whole batch on
// invalid UTF-8.
func distinctChildren(msgs []hearth.Message) []string {
	all := make([]string, len(msgs))
	for i := range msgs {
		all[i] = msgs[i].ChildHash
	}
	slices.Sort(all)
	all = slices.Compact(all) // a batch names few children: check each once
	out := all[:0]
	for _, c := range all {
		if checkChildHash(c) == nil {
			out = append(out, c)
		}
	}
	return out
}

// pruneDay returns the first date Prune keeps for a cut-off time: Apply
// accepts a day while it is not before Now-Retention-24h (a phone's date is
// local), so days from that one on stay.
func pruneDay(before time.Time) string {
	cut := before.UTC().Add(-24 * time.Hour)
	day := cut.Truncate(24 * time.Hour)
	if day.Before(cut) {
		day = day.Add(24 * time.Hour)
	}
	return day.Format(hearth.DateLayout)
}

// dayCollector assembles ScreenTimeDays from day rows and hour rows.
type dayCollector struct {
	days []ScreenTimeDay
	idx  map[string]int
}

func (c *dayCollector) get(date string) *ScreenTimeDay {
	if c.idx == nil {
		c.idx = make(map[string]int)
	}
	i, ok := c.idx[date]
	if !ok {
		i = len(c.days)
		c.idx[date] = i
		c.days = append(c.days, ScreenTimeDay{Date: date, Apps: map[string]map[int]int64{}})
	}
	return &c.days[i]
}

func (c *dayCollector) day(date string, total int64, recv time.Time) {
	d := c.get(date)
	d.TotalSeconds, d.ReceivedAt = total, recv.UTC()
}

func (c *dayCollector) hour(date, app string, hour int, secs int64) {
	d := c.get(date)
	if d.Apps[app] == nil {
		d.Apps[app] = map[int]int64{}
	}
	d.Apps[app][hour] = secs
}

func (c *dayCollector) done() []ScreenTimeDay {
	slices.SortFunc(c.days, func(a, b ScreenTimeDay) int { return cmp.Compare(a.Date, b.Date) })
	if c.days == nil {
		return []ScreenTimeDay{}
	}
	return c.days
}
