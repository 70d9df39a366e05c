package fleet

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guardianai/hearth/central/store"
)

func newOps(t *testing.T) (Ops, *bytes.Buffer, string) {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	home, _, err := st.AddHome(context.Background(), "h")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddChild(context.Background(), home, "kid"); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	return Ops{Store: st, Log: slog.New(slog.NewTextHandler(&log, nil)), Actor: "test:me"}, &log, home
}

// Ensure that an erase naming another home than the child's is refused
// and leaves the child, and that the refusal is in the audit log too.
func TestOps_RemoveChild_WrongHome(t *testing.T) {
	ops, log, home := newOps(t)
	other, _, _ := ops.Store.AddHome(context.Background(), "other")
	if _, err := ops.RemoveChild(context.Background(), other, "kid", true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("erase via the wrong home: %v, want ErrNotFound", err)
	}
	if kids, _ := ops.Store.Children(context.Background(), home); len(kids) != 1 {
		t.Fatalf("children after the refused erase: %v", kids)
	}
	if l := log.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, AuditEraseChild) || !strings.Contains(l, "result=failed") ||
		!strings.Contains(l, "actor=test:me") {
		t.Fatalf("audit of the refused erase: %s", l)
	}
}

// Ensure that a child detached from its home (its data kept) can no
// longer be erased by naming it with no home while it was in one, and is
// erased by its hash alone once detached, both audited.
func TestOps_RemoveChild_DetachThenErase(t *testing.T) {
	ops, log, home := newOps(t)
	ctx := context.Background()
	if _, err := ops.RemoveChild(ctx, "", "kid", true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("erase of a child in a home without naming it: %v, want ErrNotFound", err)
	}
	if _, err := ops.RemoveChild(ctx, home, "kid", false); err != nil {
		t.Fatalf("detach: %v", err)
	}
	if homes, known, err := ops.Store.ChildHomes(ctx, "kid"); err != nil || !known || len(homes) != 0 {
		t.Fatalf("after detach: homes %v known %v err %v, want known in no home", homes, known, err)
	}
	if _, err := ops.RemoveChild(ctx, "", "kid", true); err != nil {
		t.Fatalf("erase of the detached child: %v", err)
	}
	if _, known, _ := ops.Store.ChildHomes(ctx, "kid"); known {
		t.Fatal("the erased child is still known")
	}
	if l := log.String(); !strings.Contains(l, AuditDetachChild) || strings.Count(l, AuditEraseChild) != 2 || !strings.Contains(l, "result=ok") {
		t.Fatalf("audit lines: %s", l)
	}
}

// Ensure that live edge state fresher than the store's wins, keeping the
// token state only the store knows.
func TestHomes_LiveFresher(t *testing.T) {
	ops, _, home := newOps(t)
	ctx := context.Background()
	old := time.Now().Add(-time.Hour).UTC()
	if err := ops.Store.RecordEdge(ctx, home, store.EdgeState{EdgeID: "old", BacklogMessages: 1, Seen: old}); err != nil {
		t.Fatal(err)
	}
	if err := ops.Revoke(ctx, home); err != nil {
		t.Fatal(err)
	}
	live := map[string]store.EdgeState{home: {EdgeID: "new", BacklogMessages: 9, Seen: old.Add(time.Minute)}}
	hs, err := Homes(ctx, ops.Store, live)
	if err != nil {
		t.Fatal(err)
	}
	if e := hs[0].Edge; e.EdgeID != "new" || e.BacklogMessages != 9 || !e.Revoked || !hs[0].LastSeen.Equal(old.Add(time.Minute)) {
		t.Fatalf("merged home %+v", hs[0])
	}
	live[home] = store.EdgeState{EdgeID: "stale", Seen: old.Add(-time.Minute)}
	if hs, _ = Homes(ctx, ops.Store, live); hs[0].Edge.EdgeID != "old" {
		t.Fatalf("a staler live report won: %+v", hs[0].Edge)
	}
}
