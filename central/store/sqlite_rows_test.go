package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/guardianai/hearth"
)

// Ensure that a batch naming more children than one look-up binds finds
// every known child's home and rejects the unknown ones, on every engine.
func TestStore_Apply_ManyChildren(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ctx := context.Background()
		s := open(t, e.dsn(t), testOptions())
		home, _, err := s.AddHome(ctx, "big")
		if err != nil {
			t.Fatal(err)
		}
		const known, unknown = 1100, 50
		var msgs []hearth.Message
		for i := range known + unknown {
			child := fmt.Sprintf("kid-%04d", i)
			if i < known {
				if _, err := s.AddChild(ctx, home, child); err != nil {
					t.Fatal(err)
				}
			}
			msgs = append(msgs, locMsg(child, at(-time.Duration(i)*time.Second), 1, 2, at(-time.Minute)))
		}
		res, err := s.Apply(ctx, home, msgs)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if want := i < known; (r.Status == StatusOK) != want || (!want && r.Code != CodeUnknownChild) {
				t.Fatalf("message %d: %+v, want stored %v", i, r, want)
			}
		}
		st, err := s.Stats(ctx)
		if err != nil || st["locations"] != known {
			t.Fatalf("stats %v %v, want %d locations", st, err, known)
		}
	})
}
