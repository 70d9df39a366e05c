package apptest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/guardianai/hearth/outbox"
)

// Ensure that an outbox file of the previous release (commit 2c5d0d7,
// format 2; see forwarder/testdata) is migrated by a hearthd that phones
// load and that is killed -9 ten times: the file's 60 messages stay, once
// each and unchanged, beside every message acked since.
func TestHearthd_Crash_MigrateOldFormatUnderLoad(t *testing.T) {
	const kills, phones = 10, 8
	dir := t.TempDir()
	old := filepath.Join(t.TempDir(), "old.db")
	writeGunzip(t, "../forwarder/testdata/outbox-2c5d0d7.db.gz", old)
	writeGunzip(t, "../forwarder/testdata/outbox-2c5d0d7.db.gz", filepath.Join(dir, "outbox.db"))
	want := readOld(t, old)

	acked := &ackedSet{keys: map[string]bool{}}
	rng := rand.New(rand.NewPCG(2, uint64(time.Now().UnixNano())))
	base := time.Now().Add(-time.Hour)
	for k := 0; k < kills; k++ {
		d := StartHearthd(t, dir)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for p := 0; p < phones; p++ {
			child := fmt.Sprintf("migrate-%d", p)
			start := base.Add(time.Duration(k) * time.Minute)
			wg.Go(func() { crashPhone(d.URL, child, start, acked, stop) })
		}
		time.Sleep(time.Duration(rng.IntN(250)) * time.Millisecond)
		d.Kill()
		close(stop)
		wg.Wait()
	}

	recs := outboxRecords(t, dir)
	if len(recs) < len(want) {
		t.Fatalf("%d records after migration, fewer than the old file's %d", len(recs), len(want))
	}
	for i, w := range want {
		g := recs[i]
		if g.Seq != w.Seq || g.Msg.ChildHash != w.Msg.ChildHash || g.Msg.Kind != w.Msg.Kind || g.Msg.Via != w.Msg.Via ||
			!g.Msg.ReceivedAt.Equal(w.Msg.ReceivedAt) || g.Msg.Synced != w.Msg.Synced || !bytes.Equal(g.Msg.Data, w.Msg.Data) {
			t.Fatalf("old record %d changed:\n got %+v\nwant %+v", w.Seq, g, w)
		}
	}
	stored := map[string]int{}
	for _, r := range recs[len(want):] {
		stored[locationKey(t, r)]++
	}
	lost := 0
	for k, n := range stored {
		if n != 1 {
			t.Errorf("%s stored %d times", k, n)
		}
	}
	for k := range acked.keys {
		if stored[k] != 1 {
			lost++
			if lost < 10 {
				t.Errorf("acked message %s is not in the outbox", k)
			}
		}
	}
	t.Logf("%d kills: %d old messages kept, %d acked, %d stored, %d acked but lost", kills, len(want), len(acked.keys), len(stored), lost)
	if len(acked.keys) < kills {
		t.Fatalf("only %d messages acked over %d rounds: the load did not run", len(acked.keys), kills)
	}
}

func writeGunzip(t *testing.T, from, to string) {
	t.Helper()
	gz, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// readOld reads an old file's records through a copy (this build migrates
// what it opens).
func readOld(t *testing.T, path string) []outbox.Record {
	t.Helper()
	ob, err := outbox.Open(path, outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	recs, err := ob.ReadOldest(1000)
	if err != nil || len(recs) != 60 {
		t.Fatalf("old file: %d records, %v", len(recs), err)
	}
	return recs
}
