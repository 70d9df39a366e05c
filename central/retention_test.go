package central

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/store"
	"github.com/guardianai/hearth/central/store/pgtest"
	"github.com/guardianai/hearth/internal/testutil"
)

// Ensure that on PostgreSQL a replica whose peer holds the prune lock
// skips its pass (the old row stays), and prunes once the lock is free.
func TestServer_Prune_OneReplicaAtATime(t *testing.T) {
	dsn := pgtest.DSN(t)
	ts := startTestServer(t, func(c *Config) { c.DB, c.RetentionDays = dsn, 1 })
	ctx := context.Background()
	peer, err := store.OpenWith(ctx, dsn, store.Options{Retention: 10 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	var release func()
	testutil.WaitFor(t, 10*time.Second, func() error { // the pass at start must be over
		r, ok, err := peer.(store.PruneLocker).PruneLock(ctx)
		if err != nil || !ok {
			return fmt.Errorf("prune lock: %v %v", ok, err)
		}
		release = r
		return nil
	})
	old := time.Now().Add(-48 * time.Hour).UTC()
	data, _ := json.Marshal(map[string]any{"timestamp": old.Format(time.RFC3339Nano), "latitude": 1, "longitude": 2})
	msg := hearth.Message{ChildHash: ts.child, Kind: hearth.KindLocation, ReceivedAt: old, Via: hearth.ViaWS, Data: data}
	if res, err := peer.Apply(ctx, ts.homeOf(t, ts.child), []hearth.Message{msg}); err != nil || res[0].Status != store.StatusOK {
		t.Fatalf("old row: %v %v", res, err)
	}
	locations := func() int64 {
		n, err := peer.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n["locations"]
	}
	ts.prune(ctx)
	if n := locations(); n != 1 {
		t.Fatalf("a replica pruned while its peer held the lock: %d rows left", n)
	}
	release()
	ts.prune(ctx)
	if n := locations(); n != 0 {
		t.Fatalf("after the peer released the lock: %d rows left", n)
	}
}
