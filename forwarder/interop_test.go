package forwarder

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/outbox"
)

// The previous release (commit 2c5d0d7) left two fixtures in testdata,
// written by testdata/gen-2c5d0d7.go.txt: an outbox file of its format (2)
// holding 60 messages of every kind, via and clock, and the batch its
// forwarder built from them. Central decoded that batch's JSON; if this
// build sends the same bytes, that central takes this edge's batches, and
// this build's central must take that edge's.
var (
	fixtureEdge   = "edge-2c5d0d7"
	fixtureSentAt = time.Date(2026, 11, 29, 13, 0, 0, 0, time.UTC)
)

// oldOutbox copies the previous release's outbox file into a temp dir.
func oldOutbox(t *testing.T) string {
	t.Helper()
	gz, err := os.ReadFile("testdata/outbox-2c5d0d7.db.gz")
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
	path := filepath.Join(t.TempDir(), "outbox.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func oldBatch(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/batch-2c5d0d7.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readAll(t *testing.T, ob *outbox.Outbox) []byte {
	t.Helper()
	b := outbox.Batch{JSON: appendBatchHead(nil, fixtureEdge, fixtureSentAt)}
	if err := ob.ReadBatch(&b, 0, 1000, 1<<20); err != nil {
		t.Fatal(err)
	}
	return closeBatch(b.JSON)
}

// Ensure that this build, from the previous release's outbox file
// (migrated on open) and from its own format, sends byte for byte the
// batch the previous release sent for the same messages.
func TestInterop_BatchBytesAsPreviousRelease(t *testing.T) {
	want := oldBatch(t)
	migrated, err := outbox.Open(oldOutbox(t), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer migrated.Close()
	if got := readAll(t, migrated); !bytes.Equal(got, want) {
		t.Fatalf("batch from the migrated file differs from the previous release's:\n got %.300s\nwant %.300s", got, want)
	}

	recs, err := migrated.ReadOldest(1000)
	if err != nil || len(recs) != 60 {
		t.Fatalf("ReadOldest = %d records, %v", len(recs), err)
	}
	fresh, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	msgs := make([]hearth.Message, len(recs))
	for i, r := range recs {
		msgs[i] = r.Msg
	}
	if err := fresh.Store(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, fresh); !bytes.Equal(got, want) {
		t.Fatalf("batch from this build's format differs from the previous release's:\n got %.300s\nwant %.300s", got, want)
	}
}

// Ensure that this build's central stores the previous release's batch.
func TestInterop_CentralTakesPreviousReleaseBatch(t *testing.T) {
	tc := startCentral(t, nil)
	raw := oldBatch(t)
	// The fixture's children, renamed to one this central knows: the
	// rest of the JSON stays the previous release's.
	for _, c := range []string{"kid-a", "kid_b", "KID.c"} {
		raw = bytes.ReplaceAll(raw, []byte(`"child_hash":"`+c+`"`), []byte(`"child_hash":"`+tc.Child+`"`))
	}
	var zipped bytes.Buffer
	if err := gzipInto(&zipped, raw); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, tc.URL+hearth.PathEdgeBatches, &zipped)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tc.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("central answered %d: %s", resp.StatusCode, body)
	}
	var reply hearth.BatchReply
	if err := json.Unmarshal(body, &reply); err != nil || len(reply.Results) != 60 {
		t.Fatalf("reply %s (%v)", body, err)
	}
	for _, r := range reply.Results {
		if r.Status != hearth.BatchStatusOK && !strings.Contains(r.Error, "retention") {
			t.Errorf("seq %d: %s %s", r.Seq, r.Status, r.Error)
		}
	}
	// The previous release reads each result as {seq, status, error}
	// (its hearth.BatchResult) with encoding/json: this central's answer,
	// codes and all, must still decode to one result per message, each
	// rejection with its reason.
	var previous struct {
		Results *[]struct {
			Seq    uint64 `json:"seq"`
			Status string `json:"status"`
			Error  string `json:"error,omitempty"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &previous); err != nil || previous.Results == nil || len(*previous.Results) != 60 {
		t.Fatalf("the previous release cannot read %s: %v", body, err)
	}
	for i, r := range *previous.Results {
		if r.Seq != reply.Results[i].Seq || r.Status != reply.Results[i].Status || r.Status == hearth.BatchStatusRejected && r.Error == "" {
			t.Errorf("previous release reads result %d as %+v", i, r)
		}
	}
}
