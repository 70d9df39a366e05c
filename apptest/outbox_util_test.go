package apptest

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/guardianai/hearth/outbox"
)

// outboxRecords opens a stopped daemon's outbox and returns what it holds.
func outboxRecords(t *testing.T, dataDir string) []outbox.Record {
	t.Helper()
	ob, err := outbox.Open(filepath.Join(dataDir, "outbox.db"), outbox.Options{})
	if err != nil {
		t.Fatalf("open outbox: %v", err)
	}
	defer ob.Close()
	recs, err := ob.ReadOldest(1 << 30)
	if err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	return recs
}

func countOutbox(t *testing.T, dataDir string) int {
	return len(outboxRecords(t, dataDir))
}

// locationKey identifies a stored location message by child and timestamp.
func locationKey(t *testing.T, r outbox.Record) string {
	t.Helper()
	var d struct {
		Timestamp time.Time `json:"timestamp"`
	}
	if err := json.Unmarshal(r.Msg.Data, &d); err != nil {
		t.Fatalf("record %d: %v", r.Seq, err)
	}
	return r.Msg.ChildHash + "@" + d.Timestamp.UTC().Format(time.RFC3339Nano)
}
