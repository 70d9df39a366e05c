package console

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"sort"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/fleet"
	"github.com/guardianai/hearth/central/store"
	"github.com/valyala/fasthttp"
)

// homeRow is one home as the pages show it.
type homeRow struct {
	fleet.Home
	Messages int64 // stored in the last 24 hours, by any replica
}

type homesPage struct {
	page
	Now   time.Time
	Homes []homeRow
}

type childRow struct {
	Hash, Name string
}

type homePage struct {
	page
	Now      time.Time
	Home     homeRow
	Children []childRow
}

type childPage struct {
	page
	Hash, Name  string
	Homes       []string
	From, To    string
	Total       string
	PerDay      any // template.HTML of the charts
	PerApp      any
	Locations   []hearth.Location
	Visits      []hearth.SiteVisit
	LocsShown   int
	VisitsShown int
}

// Periods a child's page covers.
const (
	screenDays     = 14
	recentDays     = 7
	maxLocsShown   = 30
	maxVisitsShown = 50
	maxAppsShown   = 12
)

func (c *Console) dbContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.o.StoreTimeout)
}

// messagesSince is the first hour of "the last 24 hours" at now: the
// store counts messages per hour, so this one and the 23 before it.
func messagesSince(now time.Time) time.Time {
	return now.UTC().Truncate(time.Hour).Add(-23 * time.Hour)
}

// homes lists the homes with the freshest edge state this replica knows.
func (c *Console) homes(ctx context.Context) ([]homeRow, error) {
	var live map[string]store.EdgeState
	if c.o.Live != nil {
		live = c.o.Live()
	}
	hs, err := fleet.Homes(ctx, c.o.Store, live)
	if err != nil {
		return nil, err
	}
	msgs, err := c.o.Store.HomeMessages(ctx, messagesSince(c.o.Now()))
	if err != nil {
		return nil, err
	}
	out := make([]homeRow, len(hs))
	for i, h := range hs {
		out[i] = homeRow{Home: h, Messages: msgs[h.ID]}
	}
	return out, nil
}

func (c *Console) serveHomes(ctx *fasthttp.RequestCtx, w who) {
	dbctx, cancel := c.dbContext()
	defer cancel()
	homes, err := c.homes(dbctx)
	if err != nil {
		c.failed(ctx, "list homes", err)
		return
	}
	c.render(ctx, fasthttp.StatusOK, "homes", homesPage{page: c.page("Homes", w, 30), Now: c.o.Now(), Homes: homes})
}

func (c *Console) serveHome(ctx *fasthttp.RequestCtx, w who, id string) {
	dbctx, cancel := c.dbContext()
	defer cancel()
	homes, err := c.homes(dbctx)
	if err != nil {
		c.failed(ctx, "list homes", err)
		return
	}
	i := slices.IndexFunc(homes, func(h homeRow) bool { return h.ID == id })
	if i < 0 {
		textError(ctx, "no such home\n", fasthttp.StatusNotFound)
		return
	}
	kids, err := c.o.Store.Children(dbctx, id)
	if err != nil {
		c.failed(ctx, "list children", err)
		return
	}
	names, err := c.o.Store.ChildNames(dbctx, id)
	if err != nil {
		c.failed(ctx, "child names", err)
		return
	}
	p := homePage{page: c.page(homes[i].Name, w, 30), Now: c.o.Now(), Home: homes[i]}
	for _, k := range kids {
		p.Children = append(p.Children, childRow{Hash: k, Name: names[k]})
	}
	c.render(ctx, fasthttp.StatusOK, "home", p)
}

// serveChild shows a child's data, and writes to the audit log who saw it.
func (c *Console) serveChild(ctx *fasthttp.RequestCtx, w who, hash string) {
	hash, err := url.PathUnescape(hash)
	if err != nil {
		textError(ctx, "bad child hash in the path\n", fasthttp.StatusBadRequest)
		return
	}
	dbctx, cancel := c.dbContext()
	defer cancel()
	homes, known, err := c.o.Store.ChildHomes(dbctx, hash)
	if err != nil {
		c.failed(ctx, "look up child", err)
		return
	}
	if !known {
		textError(ctx, "no such child\n", fasthttp.StatusNotFound)
		return
	}
	p, err := c.childData(dbctx, hash, homes)
	if err != nil {
		c.failed(ctx, "read child data", err)
		return
	}
	c.ops(w).ViewedChild(firstOr(homes, ""), hash)
	p.page = c.page("Child "+p.Name, w, 0)
	c.render(ctx, fasthttp.StatusOK, "child", p)
}

func (c *Console) childData(ctx context.Context, hash string, homes []string) (childPage, error) {
	now := c.o.Now().UTC()
	p := childPage{Hash: hash, Name: shortHash(hash), Homes: homes}
	for _, h := range homes {
		names, err := c.o.Store.ChildNames(ctx, h)
		if err != nil {
			return p, err
		}
		if n := names[hash]; n != "" {
			p.Name = n
			break
		}
	}
	p.From, p.To = now.AddDate(0, 0, -(screenDays-1)).Format(hearth.DateLayout), now.Format(hearth.DateLayout)
	days, err := c.o.Store.ScreenTime(ctx, hash, p.From, p.To)
	if err != nil {
		return p, err
	}
	perDay, perApp, total := screenBars(days, now)
	p.PerDay = ColumnChart("Screen time per day, "+p.From+" to "+p.To, perDay)
	p.PerApp = RowChart("Screen time per app, "+p.From+" to "+p.To, perApp)
	p.Total = minutesText(total)
	since := now.AddDate(0, 0, -recentDays)
	if p.Locations, err = c.o.Store.Locations(ctx, hash, since, now.Add(time.Hour)); err != nil {
		return p, err
	}
	if p.Visits, err = c.o.Store.SiteAccess(ctx, hash, since, now.Add(time.Hour)); err != nil {
		return p, err
	}
	p.LocsShown, p.Locations = len(p.Locations), newestFirst(p.Locations, maxLocsShown)
	p.VisitsShown, p.Visits = len(p.Visits), newestFirst(p.Visits, maxVisitsShown)
	return p, nil
}

// screenBars turns stored days into one bar per day of the period (zero
// for a day without data) and one per app (the largest, summed), and the
// period's total.
func screenBars(days []store.ScreenTimeDay, now time.Time) ([]Bar, []Bar, int64) {
	byDay := map[string]int64{}
	byApp := map[string]int64{}
	var total int64
	for _, d := range days {
		byDay[d.Date] = d.TotalSeconds
		total += d.TotalSeconds
		for app, hours := range d.Apps {
			for _, s := range hours {
				byApp[app] += s
			}
		}
	}
	var perDay []Bar
	for i := screenDays - 1; i >= 0; i-- {
		d := now.AddDate(0, 0, -i).Format(hearth.DateLayout)
		perDay = append(perDay, Bar{Label: d[5:], Value: float64(byDay[d]), Text: minutesText(byDay[d])})
	}
	apps := make([]string, 0, len(byApp))
	for a := range byApp {
		apps = append(apps, a)
	}
	sort.Slice(apps, func(i, j int) bool {
		if byApp[apps[i]] != byApp[apps[j]] {
			return byApp[apps[i]] > byApp[apps[j]]
		}
		return apps[i] < apps[j]
	})
	var perApp []Bar
	for _, a := range apps[:min(len(apps), maxAppsShown)] {
		perApp = append(perApp, Bar{Label: a, Value: float64(byApp[a]), Text: minutesText(byApp[a])})
	}
	return perDay, perApp, total
}

// newestFirst reverses an oldest-first list and keeps its first n.
func newestFirst[T any](s []T, n int) []T {
	s = slices.Clone(s)
	slices.Reverse(s)
	return s[:min(len(s), n)]
}

func firstOr(s []string, def string) string {
	if len(s) == 0 {
		return def
	}
	return s[0]
}

// page is the layout's data for a page titled title.
func (c *Console) page(title string, w who, refresh int) page {
	p := page{Title: title, Version: c.o.Version, Refresh: refresh}
	if w.session != nil {
		p.CSRF = w.session.csrf
	}
	return p
}

// failed answers a database failure: 503 when retrying may work.
func (c *Console) failed(ctx *fasthttp.RequestCtx, op string, err error) {
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		ctx.Response.Header.Set("Retry-After", "5")
		textError(ctx, "the database is unavailable; reload in a moment\n", fasthttp.StatusServiceUnavailable)
		return
	}
	c.o.Log.Error("console: database failed", "op", op, "err", err)
	textError(ctx, "internal error; see hearth-central's log\n", fasthttp.StatusInternalServerError)
}
