package forwarder

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central"
	"github.com/guardianai/hearth/outbox"
)

// readBatch appends n messages to a fresh outbox and reads them back as
// the forwarder does, with the head for edgeID and at.
func readBatch(t *testing.T, n int, edgeID string, at time.Time, maxBytes int) outbox.Batch {
	t.Helper()
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ob.Close() })
	msgs := make([]hearth.Message, n)
	for i := range msgs {
		msgs[i] = location("kid", i)
	}
	if err := ob.Store(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	b := outbox.Batch{JSON: appendBatchHead(nil, edgeID, at)}
	if err := ob.ReadBatch(&b, 0, n, maxBytes); err != nil {
		t.Fatal(err)
	}
	b.JSON = closeBatch(b.JSON)
	return b
}

// Ensure that a batch is what central decodes, in order, with sent_at in
// milliseconds, and that the byte limit cuts it (but never below one message).
func TestBatch_CentralDecodesIt(t *testing.T) {
	at := time.Date(2025, 12, 10, 10, 30, 5, 123456789, time.UTC)
	b := readBatch(t, 5, "edge-1", at, 1<<20)
	raw := b.JSON
	if len(b.Seqs) != 5 {
		t.Fatalf("sent %d", len(b.Seqs))
	}
	if !strings.Contains(string(raw), `"sent_at":"2025-12-10T10:30:05.123Z"`) {
		t.Errorf("sent_at not in milliseconds: %s", raw[:80])
	}
	dec, err := central.DecodeBatch(raw, "", central.BatchLimits{MaxDecompressed: 1 << 20, MaxMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	if dec.EdgeID != "edge-1" || len(dec.Messages) != 5 || dec.Messages[0].Seq != 1 || dec.Messages[4].Seq != 5 ||
		dec.Messages[0].Type != "location" || dec.Messages[0].Via != "ws" || dec.Messages[0].ChildHash != "kid" {
		t.Fatalf("decoded %+v", dec)
	}

	half := readBatch(t, 5, "e", at, len(raw)/2)
	if len(half.Seqs) < 1 || len(half.Seqs) > 3 || len(half.JSON) > len(raw)/2 {
		t.Errorf("half the bytes took %d of 5 messages (%d bytes)", len(half.Seqs), len(half.JSON))
	}
	if !json.Valid(half.JSON) {
		t.Errorf("invalid body %s", half.JSON)
	}
	if tiny := readBatch(t, 5, "e", at, 1); len(tiny.Seqs) != 1 {
		t.Errorf("a tiny limit took %d messages, want 1", len(tiny.Seqs))
	}
}

// Ensure that results are acted on only for seqs sent with a known status.
func TestMatchResults(t *testing.T) {
	sent := []uint64{10, 11, 12}
	tests := []struct {
		body    string
		want    string // ok / rejected / missing / unexpected
		wantErr bool
	}{
		{`{"results":[{"seq":10,"status":"ok"},{"seq":11,"status":"ok"},{"seq":12,"status":"ok"}]}`, "[10 11 12] [] [] 0", false},
		{`{"results":[{"seq":10,"status":"ok"},{"seq":11,"status":"rejected","error":"unknown child"}]}`, "[10] [11:rejected by central: unknown child] [12] 0", false},
		{`{"results":[{"seq":10,"status":"ok"},{"seq":10,"status":"rejected"},{"seq":99,"status":"ok"},{"seq":12,"status":"odd"}]}`, "[10] [] [11 12] 3", false},
		{`{"results":[]}`, "[] [] [10 11 12] 0", false},
		{`{"results":[{"seq":11,"status":"rejected"}]}`, "[] [11:rejected by central: no reason given] [10 12] 0", false},
		{`{}`, "", true},
		{`<html>`, "", true},
		{`{"results":{"seq":1}}`, "", true},
	}
	for _, tt := range tests {
		p, err := matchResults(sent, []byte(tt.body))
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err %v", tt.body, err)
			continue
		}
		if err != nil {
			continue
		}
		var rej []string
		for _, r := range p.rejected {
			rej = append(rej, fmt.Sprintf("%d:%s", r.seq, r.reason))
		}
		got := fmt.Sprintf("%v %v %v %d", fmtSeqs(p.ok), fmtList(rej), fmtSeqs(p.missing), p.unexpected)
		if got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.body, got, tt.want)
		}
	}
}

func fmtSeqs(s []uint64) string { return fmt.Sprint(append([]uint64{}, s...)) }
func fmtList(s []string) string { return "[" + strings.Join(s, " ") + "]" }

// Ensure that Retry-After is read in seconds or as a date, and bounded.
func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 12, 10, 10, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		" 120 ":                         2 * time.Minute,
		"-5":                            0,
		"soon":                          0,
		"999999":                        maxRetryAfter,
		"Wed, 10 Dec 2025 10:00:30 GMT": 30 * time.Second,
		"Wed, 10 Dec 2025 09:00:00 GMT": 0,
	} {
		if got := retryAfter(h, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", h, got, want)
		}
	}
}

// Ensure that full jitter stays within [0, min(cap, base·2^(n-1))].
func TestFullJitter_Bounds(t *testing.T) {
	for n := 1; n < 80; n++ {
		ceiling := 5 * time.Minute
		if n <= 9 {
			ceiling = time.Second << (n - 1)
		}
		for range 50 {
			if d := fullJitter(time.Second, 5*time.Minute, n); d < 0 || d > ceiling {
				t.Fatalf("attempt %d: %s outside [0, %s]", n, d, ceiling)
			}
		}
	}
}
