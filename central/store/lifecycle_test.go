package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// forEveryEngine runs fn per engine of both schemas, on a fresh fixture.
func forEveryEngine(t *testing.T, fn func(t *testing.T, f *fixture)) {
	for _, e := range append(append([]engine{}, engines...), gaEngines...) {
		t.Run(e.name, func(t *testing.T) {
			e.require(t)
			fn(t, newFixture(t, e))
		})
	}
}

// Ensure that a rotation without grace refuses the old token at once, one
// with grace accepts it until the grace ends, and a revoke ends both.
func TestLifecycle_RotateToken(t *testing.T) {
	forEveryEngine(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		tok2, err := f.s.RotateToken(ctx, f.homeA, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.HomeByToken(ctx, f.tokA); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("old token after rotation without grace: %v, want ErrUnauthorized", err)
		}
		if _, err := f.s.HomeByGraceToken(ctx, f.tokA); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("old token in grace after rotation without grace: %v, want ErrUnauthorized", err)
		}
		if h, err := f.s.HomeByToken(ctx, tok2); err != nil || h.ID != f.homeA {
			t.Fatalf("new token: %v %v", h.ID, err)
		}

		tok3, err := f.s.RotateToken(ctx, f.homeA, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if h, err := f.s.HomeByGraceToken(ctx, tok2); err != nil || h.ID != f.homeA {
			t.Fatalf("previous token within its grace: %v %v, want home A", h.ID, err)
		}
		if _, err := f.s.HomeByToken(ctx, tok3); err != nil {
			t.Fatalf("new token: %v", err)
		}
		states, err := f.s.EdgeStates(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if g := states[f.homeA].GraceUntil; !g.Equal(testNow.Add(time.Hour)) {
			t.Fatalf("grace until %v, want %v", g, testNow.Add(time.Hour))
		}

		if err := f.s.RevokeHome(ctx, f.homeA); err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{tok2, tok3} {
			if _, err := f.s.HomeByToken(ctx, tok); !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("token after revoke: %v", err)
			}
			if _, err := f.s.HomeByGraceToken(ctx, tok); !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("grace token after revoke: %v", err)
			}
		}
		if states, _ = f.s.EdgeStates(ctx); !states[f.homeA].Revoked || states[f.homeB].Revoked {
			t.Fatalf("revoked: A %v B %v, want true false", states[f.homeA].Revoked, states[f.homeB].Revoked)
		}
		tok4, err := f.s.RotateToken(ctx, f.homeA, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.HomeByToken(ctx, tok4); err != nil {
			t.Fatalf("token after revoke and rotation: %v", err)
		}
		if states, _ = f.s.EdgeStates(ctx); states[f.homeA].Revoked || !states[f.homeA].GraceUntil.IsZero() {
			t.Fatalf("after rotating a revoked home: %+v, want active without grace", states[f.homeA])
		}
		if _, err := f.s.HomeByToken(ctx, f.tokB); err != nil {
			t.Fatalf("home B's token: %v", err)
		}
		for _, err := range []error{f.s.RevokeHome(ctx, "nope"), func() error { _, err := f.s.RotateToken(ctx, "nope", 0); return err }()} {
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown home: %v, want ErrNotFound", err)
			}
		}
	})
}

// Ensure that a grace token stops working once its grace has passed, on
// the database's record (another replica's clock sees the same).
func TestLifecycle_GraceEnds(t *testing.T) {
	forEveryEngine(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		if _, err := f.s.RotateToken(ctx, f.homeA, time.Minute); err != nil {
			t.Fatal(err)
		}
		later := f.s
		switch s := f.s.(type) {
		case *SQLite:
			c := *s
			c.opts.Now = func() time.Time { return testNow.Add(time.Minute + time.Second) }
			later = &c
		case *Postgres:
			c := *s
			c.opts.Now = func() time.Time { return testNow.Add(time.Minute + time.Second) }
			later = &c
		case *GuardianSQLite:
			c := *s
			c.opts.Now = func() time.Time { return testNow.Add(time.Minute + time.Second) }
			later = &c
		case *GuardianPostgres:
			c := *s
			c.opts.Now = func() time.Time { return testNow.Add(time.Minute + time.Second) }
			later = &c
		}
		if _, err := f.s.HomeByGraceToken(ctx, f.tokA); err != nil {
			t.Fatalf("within grace: %v", err)
		}
		if _, err := later.HomeByGraceToken(ctx, f.tokA); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("after grace: %v, want ErrUnauthorized", err)
		}
	})
}

// Ensure that names are kept per home and refused when unprintable.
func TestLifecycle_Names(t *testing.T) {
	forEveryEngine(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		if err := f.s.SetChildName(ctx, f.homeA, f.a1, "Ada"); err != nil {
			t.Fatal(err)
		}
		names, err := f.s.ChildNames(ctx, f.homeA)
		if err != nil {
			t.Fatal(err)
		}
		if names[f.a1] != "Ada" {
			t.Fatalf("names %v, want %s: Ada", names, f.a1)
		}
		if err := f.s.SetChildName(ctx, f.homeB, f.a1, "Ada"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("naming another home's child: %v, want ErrNotFound", err)
		}
		if err := f.s.SetChildName(ctx, f.homeA, f.a1, "A\nB"); !errors.Is(err, ErrInvalid) {
			t.Fatalf("name with a newline: %v, want ErrInvalid", err)
		}
	})
}

// Ensure that erasing a child deletes its rows, in more than one batch,
// and leaves the other children's.
func TestLifecycle_EraseChild(t *testing.T) {
	forEveryEngine(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		for i := range EraseBatch + 5 {
			applyOK(t, f.s, f.homeA, locMsg(f.a1, testNow.Add(-time.Duration(i+1)*time.Second), 1, 2, at(0)))
		}
		applyOK(t, f.s, f.homeA, stMsg(f.a1, "2025-12-09", 60, map[string]map[int]int64{"app.x": {9: 60}}, at(0)),
			siteMsg(f.a1, at(0), visit{testNow.Add(-time.Hour), "https://a.example", true}),
			locMsg(f.a2, testNow.Add(-time.Second), 3, 4, at(0)))
		n, err := f.s.EraseChild(ctx, f.a1)
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(EraseBatch + 5 + 1 + 1 + 1); n != want {
			t.Fatalf("erased %d rows, want %d", n, want)
		}
		if d := dump(t, f.s, f.a1); len(d.Days)+len(d.Hours)+len(d.Locs)+len(d.Sites) != 0 {
			t.Fatalf("rows left of the erased child: %+v", d)
		}
		if d := dump(t, f.s, f.a2); len(d.Locs) != 1 {
			t.Fatalf("the other child's locations: %v, want 1", d.Locs)
		}
		kids, _ := f.s.Children(ctx, f.homeA)
		if fmt.Sprint(kids) != fmt.Sprint([]string{f.a2}) {
			t.Fatalf("home A's children after erase: %v", kids)
		}
		if _, err := f.s.EraseChild(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("erasing an unknown child: %v", err)
		}
	})
}

// Ensure that detaching keeps the child's rows while its home no longer
// has it: not in the roster, names or child count, its edge's batch for it
// refused as another home's child; an operator still finds it, in no home.
// In hearth's schema central's device listener refuses it too (in the
// GuardianAI schema a dashboard child sends straight to central, home or
// not).
func TestLifecycle_DetachChild(t *testing.T) {
	forEveryEngine(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		applyOK(t, f.s, f.homeA, locMsg(f.a1, testNow.Add(-time.Second), 1, 2, at(0)))
		if err := f.s.SetChildName(ctx, f.homeA, f.a1, "Ada"); err != nil {
			t.Fatal(err)
		}
		if err := f.s.DetachChild(ctx, f.homeA, f.a1); err != nil {
			t.Fatal(err)
		}
		kids, _ := f.s.Children(ctx, f.homeA)
		if fmt.Sprint(kids) != fmt.Sprint([]string{f.a2}) {
			t.Fatalf("children after detach: %v", kids)
		}
		if n := homeChildCount(t, f.s, f.homeA); n != 1 {
			t.Fatalf("home A counts %d children after detach, want 1", n)
		}
		if names, _ := f.s.ChildNames(ctx, f.homeA); names[f.a1] != "" {
			t.Fatalf("names after detach: %v", names)
		}
		if d := dump(t, f.s, f.a1); len(d.Locs) != 1 {
			t.Fatalf("detached child's data: %v, want kept", d.Locs)
		}
		if homes, known, err := f.s.ChildHomes(ctx, f.a1); err != nil || !known || len(homes) != 0 {
			t.Fatalf("ChildHomes after detach = %v, %v, %v; want known, in no home", homes, known, err)
		}
		if got, err := f.s.Locations(ctx, f.a1, testNow.Add(-time.Hour), testNow); err != nil || len(got) != 1 {
			t.Fatalf("reading the detached child's locations: %v, %v", got, err)
		}
		res := apply(t, f.s, f.homeA, locMsg(f.a1, testNow.Add(-2*time.Second), 3, 4, at(0)))
		if res[0].Code != CodeForeignChild || res[0].Error == "" {
			t.Fatalf("home A's batch for the detached child: %+v, want refused as %s with a reason", res[0], CodeForeignChild)
		}
		_, roster, _ := f.s.ChildHome(ctx, f.a1)
		direct := apply(t, f.s, "", locMsg(f.a1, testNow.Add(-3*time.Second), 5, 6, at(0)))
		if isGuardian(f.s) {
			if !roster || direct[0].Status != StatusOK {
				t.Fatalf("GuardianAI: on the device roster %v, sent straight to central %+v; want both", roster, direct[0])
			}
		} else if roster || direct[0].Code != CodeUnknownChild {
			t.Fatalf("hearth: on the device roster %v, sent straight to central %+v; want neither (%s)", roster, direct[0], CodeUnknownChild)
		}
		if err := f.s.DetachChild(ctx, f.homeA, f.a1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("detaching again: %v, want ErrNotFound", err)
		}
		if err := f.s.DetachChild(ctx, f.homeB, f.a2); !errors.Is(err, ErrNotFound) {
			t.Fatalf("detaching another home's child: %v, want ErrNotFound", err)
		}
	})
}

// Ensure that adding a detached child to its home again brings it back
// with its data, and its edge's batches are stored again; and that a
// detached child added to another home goes there with its data (it is
// the child's), leaving its former home without it.
func TestLifecycle_Reattach(t *testing.T) {
	forEveryEngine(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		applyOK(t, f.s, f.homeA, locMsg(f.a1, testNow.Add(-time.Second), 1, 2, at(0)))
		if err := f.s.DetachChild(ctx, f.homeA, f.a1); err != nil {
			t.Fatal(err)
		}
		if h, err := f.s.AddChild(ctx, f.homeA, f.a1); err != nil || h != f.a1 {
			t.Fatalf("re-attach: %q, %v", h, err)
		}
		if kids, _ := f.s.Children(ctx, f.homeA); fmt.Sprint(kids) != fmt.Sprint([]string{f.a1, f.a2}) {
			t.Fatalf("home A's children after re-attach: %v", kids)
		}
		applyOK(t, f.s, f.homeA, locMsg(f.a1, testNow.Add(-2*time.Second), 3, 4, at(0)))
		if d := dump(t, f.s, f.a1); len(d.Locs) != 2 {
			t.Fatalf("re-attached child's locations: %v, want the kept one and the new one", d.Locs)
		}

		if err := f.s.DetachChild(ctx, f.homeA, f.a1); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.AddChild(ctx, f.homeB, f.a1); err != nil {
			t.Fatalf("adding the detached child to home B: %v", err)
		}
		if kids, _ := f.s.Children(ctx, f.homeB); fmt.Sprint(kids) != fmt.Sprint([]string{f.a1, f.b1}) {
			t.Fatalf("home B's children: %v", kids)
		}
		if homes, _, _ := f.s.ChildHomes(ctx, f.a1); fmt.Sprint(homes) != fmt.Sprint([]string{f.homeB}) {
			t.Fatalf("the moved child's homes: %v, want only home B", homes)
		}
		applyOK(t, f.s, f.homeB, locMsg(f.a1, testNow.Add(-3*time.Second), 5, 6, at(0)))
		if res := apply(t, f.s, f.homeA, locMsg(f.a1, testNow.Add(-4*time.Second), 7, 8, at(0))); res[0].Code != CodeForeignChild {
			t.Fatalf("home A's batch for the child now in home B: %+v", res[0])
		}
		if d := dump(t, f.s, f.a1); len(d.Locs) != 3 {
			t.Fatalf("moved child's locations: %v, want its 3", d.Locs)
		}
		if !isGuardian(f.s) {
			// In hearth's schema a child has one home: one in a home is not taken by another.
			if _, err := f.s.AddChild(ctx, f.homeA, f.a1); !errors.Is(err, ErrExists) {
				t.Fatalf("adding home B's child to home A: %v, want ErrExists", err)
			}
		}
	})
}

// Ensure that a detached child's data is erased on demand, and that
// removing its former home leaves it and its data alone.
func TestLifecycle_DetachedThenEraseOrRemoveHome(t *testing.T) {
	forEveryEngine(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		applyOK(t, f.s, f.homeA, locMsg(f.a1, testNow.Add(-time.Second), 1, 2, at(0)),
			locMsg(f.a2, testNow.Add(-time.Second), 1, 2, at(0)),
			stMsg(f.a2, "2025-12-09", 60, map[string]map[int]int64{"app.x": {9: 60}}, at(0)))
		for _, k := range []string{f.a1, f.a2} {
			if err := f.s.DetachChild(ctx, f.homeA, k); err != nil {
				t.Fatal(err)
			}
		}
		n, err := f.s.RemoveHome(ctx, f.homeA)
		if err != nil || n != 0 {
			t.Fatalf("removing home A after its children were detached: %d rows erased, %v; want 0", n, err)
		}
		if d := dump(t, f.s, f.a1, f.a2); len(d.Locs) != 2 || len(d.Days) != 1 || len(d.Hours) != 1 {
			t.Fatalf("detached children's data after their former home went: %+v", d)
		}
		if _, known, _ := f.s.ChildHomes(ctx, f.a2); !known {
			t.Fatal("a detached child is unknown after its former home went")
		}
		n, err = f.s.EraseChild(ctx, f.a2)
		if err != nil || n != 3 {
			t.Fatalf("erasing the detached child: %d rows, %v; want 3", n, err)
		}
		if d := dump(t, f.s, f.a2); len(d.Locs)+len(d.Days)+len(d.Hours) != 0 {
			t.Fatalf("rows left of the erased detached child: %+v", d)
		}
		if d := dump(t, f.s, f.a1); len(d.Locs) != 1 {
			t.Fatalf("the other detached child's data: %v", d.Locs)
		}
		if !isGuardian(f.s) {
			if _, known, _ := f.s.ChildHomes(ctx, f.a2); known {
				t.Fatal("the erased child is still known")
			}
		}
	})
}

// homeChildCount is a home's child count as home list shows it.
func homeChildCount(t *testing.T, s Store, home string) int {
	t.Helper()
	homes, err := s.ListHomes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range homes {
		if h.ID == home {
			return h.Children
		}
	}
	t.Fatalf("home %s not listed", home)
	return 0
}

// Ensure that removing a home takes its token, and in hearth's schema its
// children's data; the other home is untouched.
func TestLifecycle_RemoveHome(t *testing.T) {
	forEveryEngine(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		applyOK(t, f.s, f.homeA, locMsg(f.a1, testNow.Add(-time.Second), 1, 2, at(0)))
		applyOK(t, f.s, f.homeB, locMsg(f.b1, testNow.Add(-time.Second), 1, 2, at(0)))
		n, err := f.s.RemoveHome(ctx, f.homeA)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.HomeByToken(ctx, f.tokA); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("removed home's token: %v", err)
		}
		wantLeft, wantN := 0, int64(1)
		if isGuardian(f.s) {
			wantLeft, wantN = 1, 0
		}
		if d := dump(t, f.s, f.a1); len(d.Locs) != wantLeft || n != wantN {
			t.Fatalf("after removing home A: %d rows erased, %d left; want %d, %d", n, len(d.Locs), wantN, wantLeft)
		}
		if d := dump(t, f.s, f.b1); len(d.Locs) != 1 {
			t.Fatalf("home B's data: %v", d.Locs)
		}
		if _, err := f.s.RemoveHome(ctx, f.homeA); !errors.Is(err, ErrNotFound) {
			t.Fatalf("removing again: %v, want ErrNotFound", err)
		}
	})
}

// Ensure that what an edge said of itself is kept and becomes last seen.
func TestLifecycle_RecordEdge(t *testing.T) {
	forEveryEngine(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		seen := testNow.Add(-time.Minute)
		if err := f.s.RecordEdge(ctx, f.homeA, EdgeState{EdgeID: "router-1", Version: "1.2.3", BacklogMessages: 42,
			BacklogOldestSeconds: 7, DeadLetters: 2, Seen: seen}); err != nil {
			t.Fatal(err)
		}
		states, err := f.s.EdgeStates(ctx)
		if err != nil {
			t.Fatal(err)
		}
		a, b := states[f.homeA], states[f.homeB]
		if a.EdgeID != "router-1" || a.Version != "1.2.3" || a.BacklogMessages != 42 || a.BacklogOldestSeconds != 7 ||
			a.DeadLetters != 2 || !a.Seen.Equal(seen) {
			t.Fatalf("home A's edge: %+v", a)
		}
		if b.BacklogMessages != -1 || !b.Seen.IsZero() {
			t.Fatalf("home B never reported: %+v", b)
		}
		homes, _ := f.s.ListHomes(ctx)
		for _, h := range homes {
			if h.ID == f.homeA && !h.LastSeen.Equal(seen) {
				t.Fatalf("last seen %v, want %v", h.LastSeen, seen)
			}
		}
	})
}
