package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// detachedHashes lists every page of DetachedChildren of size limit and
// returns the hashes in order, checking that only the last page says
// there is no more.
func detachedHashes(t *testing.T, s Store, limit int) []string {
	t.Helper()
	var out []string
	after := ""
	for range 100 {
		kids, more, err := s.DetachedChildren(context.Background(), after, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(kids) > limit {
			t.Fatalf("a page of %d children for limit %d", len(kids), limit)
		}
		for _, k := range kids {
			out = append(out, k.Hash)
		}
		if !more {
			return out
		}
		if len(kids) == 0 {
			t.Fatal("an empty page says there is more")
		}
		after = kids[len(kids)-1].Hash
	}
	t.Fatal("DetachedChildren pages never end")
	return nil
}

// Ensure that the children in no home are listed with their kept name and
// newest data, page by page, and leave the list when put back in a home or
// erased; children in a home are never listed.
func TestLifecycle_DetachedChildren(t *testing.T) {
	forEveryEngine(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		if got := detachedHashes(t, f.s, 10); len(got) != 0 {
			t.Fatalf("detached children of a fresh fixture: %v", got)
		}
		loc, seen := testNow.Add(-2*time.Hour), testNow.Add(-time.Hour)
		applyOK(t, f.s, f.homeA, locMsg(f.a1, loc, 1, 2, at(0)),
			siteMsg(f.a1, at(0), visit{seen, "https://example.org/", true}),
			stMsg(f.a1, "2025-12-09", 60, map[string]map[int]int64{"app.x": {9: 60}}, at(0)))
		if err := f.s.SetChildName(ctx, f.homeA, f.a1, "Ada"); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{f.a1, f.a2} {
			if err := f.s.DetachChild(ctx, f.homeA, k); err != nil {
				t.Fatal(err)
			}
		}
		kids, more, err := f.s.DetachedChildren(ctx, "", 10)
		if err != nil || more || len(kids) != 2 {
			t.Fatalf("DetachedChildren = %+v, more %v, %v; want a1 and a2, no more", kids, more, err)
		}
		a1, a2 := kids[0], kids[1]
		if a1.Hash != f.a1 || a1.Name != "Ada" || !a1.LastData.Equal(seen) || a1.LastDay != "2025-12-09" {
			t.Fatalf("a1 = %+v; want named Ada, last data %v, last day 2025-12-09", a1, seen)
		}
		wantName := "" // hearth's schema: no name was given
		if isGuardian(f.s) {
			wantName = "first-" + f.a2 // attached under its accounts_child first_name
		}
		if a2.Hash != f.a2 || a2.Name != wantName || !a2.LastData.IsZero() || a2.LastDay != "" {
			t.Fatalf("a2 = %+v; want name %q, no data", a2, wantName)
		}
		if got := detachedHashes(t, f.s, 1); fmt.Sprint(got) != fmt.Sprint([]string{f.a1, f.a2}) {
			t.Fatalf("pages of one: %v", got)
		}
		if _, more, _ := f.s.DetachedChildren(ctx, "", 1); !more {
			t.Fatal("the first of two pages of one says there is no more")
		}

		if _, err := f.s.AddChild(ctx, f.homeB, f.a1); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.EraseChild(ctx, f.a2); err != nil {
			t.Fatal(err)
		}
		if got := detachedHashes(t, f.s, 10); len(got) != 0 {
			t.Fatalf("after a1 went into home B and a2 was erased: %v, want none", got)
		}
	})
}

// Ensure that removing a home lists, in the GuardianAI schema, its
// children that are in no other home (their data stays with the
// dashboard's children) and not one still in another home; in hearth's
// schema the home's children go with it. A dashboard child never in a
// hearth home is not listed.
func TestLifecycle_DetachedChildrenAfterRemoveHome(t *testing.T) {
	forEveryEngine(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		if isGuardian(f.s) {
			// a2 is in home B too: removing home A leaves it in a home.
			if _, err := f.s.AddChild(ctx, f.homeB, f.a2); err != nil {
				t.Fatal(err)
			}
			rawExec(t, f.s, strings.ReplaceAll(strings.ReplaceAll(insertChildSQL, "$1", "'dashboard-only'"), "$2", "'Dee'"))
		}
		if _, err := f.s.RemoveHome(ctx, f.homeA); err != nil {
			t.Fatal(err)
		}
		got := detachedHashes(t, f.s, 10)
		want := []string{}
		if isGuardian(f.s) {
			want = []string{f.a1}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("detached children after removing home A: %v, want %v", got, want)
		}
	})
}

// Ensure that a page size out of bounds is clamped, not refused: 0 asks
// for one child, a huge one for at most MaxDetachedPage.
func TestLifecycle_DetachedChildrenLimit(t *testing.T) {
	forEveryEngine(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		for _, k := range []string{f.a1, f.a2} {
			if err := f.s.DetachChild(ctx, f.homeA, k); err != nil {
				t.Fatal(err)
			}
		}
		if kids, more, err := f.s.DetachedChildren(ctx, "", 0); err != nil || len(kids) != 1 || !more {
			t.Fatalf("limit 0: %+v, more %v, %v; want one and more", kids, more, err)
		}
		if kids, more, err := f.s.DetachedChildren(ctx, "", 1<<30); err != nil || len(kids) != 2 || more {
			t.Fatalf("huge limit: %+v, more %v, %v; want both, no more", kids, more, err)
		}
	})
}
