package central

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/guardianai/hearth"
)

func gz(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

const okBatch = `{"edge_id":"e1","sent_at":"2025-12-10T10:30:05.000Z","messages":[
 {"seq":1041,"child_hash":"kid","type":"location","received_at":"2025-12-10T10:30:01.123Z","via":"ws","data":{"timestamp":"2025-12-10T10:30:00Z","latitude":1,"longitude":2}},
 {"seq":18446744073709551615,"child_hash":"kid","type":"weather","received_at":"x","data":null}]}`

var testLimits = BatchLimits{MaxDecompressed: 64 << 10, MaxMessages: 10}

// Ensure that a batch decodes from identity and gzip bodies alike.
func TestDecodeBatch_OK(t *testing.T) {
	for _, tc := range []struct {
		enc  string
		body []byte
	}{{"", []byte(okBatch)}, {"identity", []byte(okBatch)}, {"gzip", gz(t, okBatch)}, {"GZIP", gz(t, okBatch)}} {
		b, err := DecodeBatch(tc.body, tc.enc, testLimits)
		if err != nil {
			t.Fatalf("%q: %v", tc.enc, err)
		}
		if b.EdgeID != "e1" || !b.SentAt.Equal(time.Date(2025, 12, 10, 10, 30, 5, 0, time.UTC)) || len(b.Messages) != 2 {
			t.Fatalf("%q: %+v", tc.enc, b)
		}
		m := b.Messages[0]
		if m.Seq != 1041 || m.ChildHash != "kid" || m.Type != "location" || m.ReceivedAt != "2025-12-10T10:30:01.123Z" || m.Via != "ws" || !strings.Contains(string(m.Data), "latitude") {
			t.Fatalf("%q: message %+v", tc.enc, m)
		}
		if b.Messages[1].Seq != 1<<64-1 || b.Messages[1].Data != nil {
			t.Fatalf("%q: message 2 %+v: want max seq and no data", tc.enc, b.Messages[1])
		}
	}
}

// Ensure that every malformed or oversized batch is refused with the
// status the edge acts on and a reason.
func TestDecodeBatch_Refusals(t *testing.T) {
	bomb := gz(t, `{"sent_at":"2025-12-10T10:30:05Z","messages":[],"pad":"`+strings.Repeat("0", 10<<20)+`"}`)
	if len(bomb) > 64<<10 {
		t.Fatalf("bomb is %d bytes compressed", len(bomb))
	}
	many := `{"sent_at":"2025-12-10T10:30:05Z","messages":[` + strings.TrimSuffix(strings.Repeat(`{"seq":1},`, 11), ",") + `]}`
	truncated := gz(t, okBatch)
	truncated = truncated[:len(truncated)-10]
	for _, tc := range []struct {
		name, enc string
		body      []byte
		status    int
		reason    string
	}{
		{"gzip bomb", "gzip", bomb, 413, "decompressed"},
		{"identity too large", "", []byte(`{"pad":"` + strings.Repeat("x", 64<<10) + `"}`), 413, "decompressed"},
		{"too many messages", "", []byte(many), 413, "11 messages; at most 10"},
		{"too many messages gzip", "gzip", gz(t, many), 413, "split"},
		{"unknown encoding", "br", []byte(okBatch), 415, "Content-Encoding"},
		{"not gzip", "gzip", []byte(okBatch), 400, "not gzip"},
		{"truncated gzip", "gzip", truncated, 400, "gzip"},
		{"empty", "", nil, 400, "JSON object"},
		{"not JSON", "", []byte("hello"), 400, "JSON object"},
		{"broken JSON", "", []byte(`{"sent_at":`), 400, "not valid JSON"},
		{"list", "", []byte(`[1]`), 400, "JSON object"},
		{"trailing data", "", []byte(`{"sent_at":"2025-12-10T10:30:05Z","messages":[]} {}`), 400, "after the JSON object"},
		{"no sent_at", "", []byte(`{"messages":[]}`), 400, "sent_at is required"},
		{"bad sent_at", "", []byte(`{"sent_at":"yesterday","messages":[]}`), 400, "sent_at"},
		{"sent_at number", "", []byte(`{"sent_at":5,"messages":[]}`), 400, "sent_at"},
		{"no messages", "", []byte(`{"sent_at":"2025-12-10T10:30:05Z"}`), 400, "messages is required"},
		{"messages object", "", []byte(`{"sent_at":"2025-12-10T10:30:05Z","messages":{}}`), 400, "messages"},
		{"message not object", "", []byte(`{"sent_at":"2025-12-10T10:30:05Z","messages":[1]}`), 400, "messages[0]: must be a JSON object"},
		{"no seq", "", []byte(`{"sent_at":"2025-12-10T10:30:05Z","messages":[{"type":"location"}]}`), 400, "messages[0]: seq is required"},
		{"negative seq", "", []byte(`{"sent_at":"2025-12-10T10:30:05Z","messages":[{"seq":-1}]}`), 400, "non-negative integer"},
		{"fractional seq", "", []byte(`{"sent_at":"2025-12-10T10:30:05Z","messages":[{"seq":1.5}]}`), 400, "non-negative integer"},
		{"no seq in a bad message", "", []byte(`{"sent_at":"2025-12-10T10:30:05Z","messages":[{"seq":1},{"child_hash":5}]}`), 400, "messages[1]: child_hash"},
	} {
		_, err := DecodeBatch(tc.body, tc.enc, testLimits)
		var be *BatchError
		if !errors.As(err, &be) {
			t.Fatalf("%s: error %v, want a *BatchError", tc.name, err)
		}
		if be.Status != tc.status || !strings.Contains(be.Reason, tc.reason) {
			t.Errorf("%s: %d %q; want %d and a reason containing %q", tc.name, be.Status, be.Reason, tc.status, tc.reason)
		}
	}
}

// Ensure that a malformed message whose seq can be read is rejected on its
// own, with the reason, while its neighbours are decoded as usual: one bad
// message never refuses its batch.
func TestDecodeBatch_MalformedMessageRejectedAlone(t *testing.T) {
	body := `{"sent_at":"2025-12-10T10:30:05Z","messages":[
 {"seq":7,"child_hash":"kid","type":"location","received_at":"2025-12-10T10:30:01Z","via":"ws","data":{}},
 {"seq":8,"child_hash":5,"type":"location"},
 {"seq":9,"child_hash":"kid","type":"location","received_at":"2025-12-10T10:30:01Z","via":"ws","data":{},"synced":"yes"}]}`
	b, err := DecodeBatch([]byte(body), "", testLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Messages) != 3 || b.Messages[0].ChildHash != "kid" || b.Messages[1].Seq != 8 || b.Messages[2].Seq != 9 {
		t.Fatalf("messages %+v", b.Messages)
	}
	if len(b.Unreadable) != 2 || b.Unreadable[0] != nil {
		t.Fatalf("unreadable %v", b.Unreadable)
	}
	if !strings.Contains(b.Unreadable[1].Error(), "child_hash must not be a JSON number") || !strings.Contains(b.Unreadable[2].Error(), "synced") {
		t.Fatalf("reasons %v", b.Unreadable)
	}
	_, _, results := prepareBatch(b.Messages, b.Unreadable, EdgeClock{}, time.Hour)
	for _, i := range []int{1, 2} {
		if r := results[i]; r.Status != "rejected" || r.Code != hearth.CodeInvalid || !strings.Contains(r.Error, "message is malformed") {
			t.Errorf("result %d: %+v", i, r)
		}
	}
}

// Ensure that an empty batch is fine (an edge may send one to report its clock).
func TestDecodeBatch_Empty(t *testing.T) {
	b, err := DecodeBatch([]byte(`{"sent_at":"2025-12-10T10:30:05+01:00","messages":[]}`), "", testLimits)
	if err != nil || len(b.Messages) != 0 || !b.SentAt.Equal(time.Date(2025, 12, 10, 9, 30, 5, 0, time.UTC)) {
		t.Fatalf("%+v %v", b, err)
	}
}

// Ensure that DecodeBatch never panics and refuses only with a *BatchError.
func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(okBatch), false)
	f.Add(gz(f, okBatch), true)
	f.Add([]byte(`{"sent_at":"2025-12-10T10:30:05Z","messages":[{"seq":1}]}`), false)
	f.Fuzz(func(t *testing.T, body []byte, gzipped bool) {
		enc := ""
		if gzipped {
			enc = "gzip"
		}
		b, err := DecodeBatch(body, enc, testLimits)
		if err != nil {
			var be *BatchError
			if !errors.As(err, &be) || be.Reason == "" {
				t.Fatalf("error %v is not a *BatchError with a reason", err)
			}
			return
		}
		if len(b.Messages) > testLimits.MaxMessages {
			t.Fatal(fmt.Sprint("over the message limit: ", len(b.Messages)))
		}
	})
}

// Ensure that the one-pass batch decoder takes what the forwarder writes,
// and that whatever it takes, encoding/json decodes to the same batch.
func FuzzScanBatch(f *testing.F) {
	f.Add([]byte(okBatch))
	f.Add(benchBody(f, 3, hearth.KindSiteAccess, []string{"a", "b"}, time.Now()))
	f.Add([]byte(`{"sent_at":"2025-12-10T10:30:05Z","messages":[{"seq":1,"data":null,"synced":true}], "edge_id":"é"}`))
	f.Add([]byte(`{"sent_at":"2025-12-10T10:30:05Z","messages":[{"seq":1,"SEQ":2}]}`))
	f.Add([]byte(`{"sent_at":"2025-12-10T10:30:05Z","messages":[{"seq":1,"data":{"a":[1,"\u00e9",{}]},"via":"\u0077s"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := hearth.ScanBatch(body)
		if !ok {
			return
		}
		slow, err := decodeBatchBody(body, 1<<20)
		if _, perr := time.Parse(time.RFC3339Nano, fast.SentAt); perr != nil && err != nil && strings.HasPrefix(err.Error(), "sent_at:") {
			return // ReadBatch refuses both alike, when it parses sent_at
		}
		if err != nil {
			t.Fatalf("ScanBatch took %q, encoding/json refuses it: %v", body, err)
		}
		if fast.EdgeID != slow.EdgeID || fast.SentAt != slow.SentAt || len(fast.Messages) != len(slow.Messages) {
			t.Fatalf("%q: ScanBatch %+v, encoding/json %+v", body, fast, slow)
		}
		for i := range fast.Messages {
			if !reflect.DeepEqual(fast.Messages[i], slow.Messages[i]) {
				t.Fatalf("%q: message %d: ScanBatch %+v, encoding/json %+v", body, i, fast.Messages[i], slow.Messages[i])
			}
		}
	})
}

// Ensure that a batch as the forwarder writes it takes the one-pass path.
func TestScanBatch_ForwarderForm(t *testing.T) {
	for _, k := range hearth.Kinds {
		body := benchBody(t, 20, k, []string{"kid-a", "kid-b"}, time.Now())
		b, ok := hearth.ScanBatch(body)
		if !ok || len(b.Messages) != 20 || b.Messages[19].Seq != 1019 || b.Messages[0].ChildHash != "kid-a" {
			t.Fatalf("%s: ok %v, %+v", k, ok, b)
		}
	}
}
