package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// testReadPages: paging through a range in pages of any size returns the
// rows of the whole range, in its order, once each (several visits share
// a time: the URL breaks the tie); a cursor past the last row gives an
// empty page.
func testReadPages(t *testing.T, f *fixture) {
	ctx := context.Background()
	t0 := at(-5 * time.Hour)
	var msgs []hearthMsg
	for i := range 7 {
		ts := t0.Add(time.Duration(i) * time.Minute)
		msgs = append(msgs, locMsg(f.a1, ts, float64(i), 0, at(0)),
			siteMsg(f.a1, at(0), visit{ts, "https://b", true}, visit{ts, "https://a", false}, visit{ts, "https://a/x", true}))
	}
	applyOK(t, f.s, f.homeA, msgs...)
	from, to := t0.Add(time.Minute-time.Nanosecond), t0.Add(time.Hour)
	p, ok := f.s.(Paged)
	if !ok {
		t.Fatalf("%T does not page", f.s)
	}
	allLocs, err := f.s.Locations(ctx, f.a1, from, to)
	if err != nil {
		t.Fatal(err)
	}
	allVisits, err := f.s.SiteAccess(ctx, f.a1, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(allLocs) != 6 || len(allVisits) != 18 {
		t.Fatalf("whole range: %d locations, %d visits; want 6, 18", len(allLocs), len(allVisits))
	}
	for _, limit := range []int{1, 2, 4, 100} {
		var locs []string
		for pg := (Page{Limit: limit}); ; {
			page, err := p.LocationsPage(ctx, f.a1, from, to, pg)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range page {
				locs = append(locs, fmt.Sprint(l))
			}
			if len(page) < limit {
				break
			}
			pg.AfterTS = page[len(page)-1].Timestamp
		}
		var visits []string
		for pg := (Page{Limit: limit}); ; {
			page, err := p.SiteAccessPage(ctx, f.a1, from, to, pg)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range page {
				visits = append(visits, fmt.Sprint(v))
			}
			if len(page) < limit {
				break
			}
			pg.AfterTS, pg.AfterURL = page[len(page)-1].Timestamp, page[len(page)-1].URL
		}
		if want := strs(allLocs); !slices.Equal(locs, want) {
			t.Errorf("limit %d: locations paged\n%v\nwant\n%v", limit, locs, want)
		}
		if want := strs(allVisits); !slices.Equal(visits, want) {
			t.Errorf("limit %d: visits paged\n%v\nwant\n%v", limit, visits, want)
		}
	}
	last := allVisits[len(allVisits)-1]
	if v, err := p.SiteAccessPage(ctx, f.a1, from, to, Page{AfterTS: last.Timestamp, AfterURL: last.URL, Limit: 5}); err != nil || len(v) != 0 {
		t.Errorf("page after the last visit: %v %v", v, err)
	}
	if l, err := p.LocationsPage(ctx, f.a1, from, to, Page{AfterTS: allLocs[len(allLocs)-1].Timestamp, Limit: 5}); err != nil || len(l) != 0 {
		t.Errorf("page after the last location: %v %v", l, err)
	}
}

func strs[T any](rows []T) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = fmt.Sprint(r)
	}
	return out
}
