package forwarder

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/guardianai/hearth/central"
	"github.com/guardianai/hearth/outbox"
)

func records(n int) []outbox.Record {
	recs := make([]outbox.Record, n)
	for i := range recs {
		recs[i] = outbox.Record{Seq: uint64(i + 10), Msg: location("kid", i)}
	}
	return recs
}

// Ensure that a batch is what central decodes, in order, with sent_at in
// milliseconds, and that the byte limit cuts it (but never below one message).
func TestEncodeBatch_CentralDecodesIt(t *testing.T) {
	at := time.Date(2025, 12, 10, 10, 30, 5, 123456789, time.UTC)
	raw, sent, bad := encodeBatch("edge-1", at, records(5), 1<<20)
	if len(sent) != 5 || len(bad) != 0 {
		t.Fatalf("sent %d, bad %v", len(sent), bad)
	}
	if !strings.Contains(string(raw), `"sent_at":"2025-12-10T10:30:05.123Z"`) {
		t.Errorf("sent_at not in milliseconds: %s", raw[:80])
	}
	b, err := central.DecodeBatch(raw, "", central.BatchLimits{MaxDecompressed: 1 << 20, MaxMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	if b.EdgeID != "edge-1" || len(b.Messages) != 5 || b.Messages[0].Seq != 10 || b.Messages[4].Seq != 14 ||
		b.Messages[0].Type != "location" || b.Messages[0].Via != "ws" || b.Messages[0].ChildHash != "kid" {
		t.Fatalf("decoded %+v", b)
	}

	_, sent, _ = encodeBatch("e", at, records(5), int64(len(raw)/2))
	if len(sent) < 1 || len(sent) > 3 {
		t.Errorf("half the bytes took %d of 5 messages", len(sent))
	}
	_, sent, _ = encodeBatch("e", at, records(5), 1)
	if len(sent) != 1 {
		t.Errorf("a tiny limit took %d messages, want 1", len(sent))
	}
}

// Ensure that a record that cannot be encoded is reported, not sent.
func TestEncodeBatch_Unencodable(t *testing.T) {
	recs := records(3)
	recs[1].Msg.Data = []byte(`{not json`)
	raw, sent, bad := encodeBatch("e", time.Now(), recs, 1<<20)
	if len(sent) != 2 || len(bad) != 1 || bad[0].seq != 11 {
		t.Fatalf("sent %d, bad %+v", len(sent), bad)
	}
	if !json.Valid(raw) {
		t.Fatalf("invalid body %s", raw)
	}
}

// Ensure that results are acted on only for seqs sent with a known status.
func TestMatchResults(t *testing.T) {
	sent := records(3) // seqs 10, 11, 12
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
