package outbox

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	bolt "go.etcd.io/bbolt"
)

// encodeStd is a batch message as encoding/json writes it (what the
// previous release's forwarder sent).
func encodeStd(t testing.TB, seq uint64, m *hearth.Message) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(hearth.BatchMessage{Seq: seq, ChildHash: m.ChildHash, Type: string(m.Kind),
		ReceivedAt: m.ReceivedAt.UTC().Format(time.RFC3339Nano), Via: m.Via, Data: m.Data, Synced: m.Synced}); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// Ensure that the stored fragment is byte for byte what encoding/json
// writes for the batch message, escapes and odd times included.
func TestFragment_MatchesEncodingJSON(t *testing.T) {
	odd := []string{"plain", "quote\"back\\slash", "ctl\x00\x01\x1f\n\r\t\b\f", "<html>&", "bad\xffutf8", "line\u2028sep\u2029", "ünï©ødé", ""}
	for i, s := range odd {
		m := msg(i)
		m.ChildHash, m.Via = s, s+"v"
		m.Synced = i%2 == 0
		m.ReceivedAt = time.Date(2026, 3, 1, 2, 3, 4, i*100_000_007, time.FixedZone("X", 3600*i))
		got := appendFragment(appendSeq(nil, uint64(i*1000)), &m)
		if want := encodeStd(t, uint64(i*1000), &m); !bytes.Equal(got, want) {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want)
		}
	}
	m := msg(1)
	m.Data = nil
	if got, want := appendFragment(appendSeq(nil, 7), &m), encodeStd(t, 7, &m); !bytes.Equal(got, want) {
		t.Errorf("nil data:\n got %s\nwant %s", got, want)
	}
}

// FuzzFragment checks the quoting against encoding/json on any string.
func FuzzFragment(f *testing.F) {
	f.Add("child", "ws")
	f.Add("\x00\xff\u2028", "\"")
	f.Fuzz(func(t *testing.T, child, via string) {
		m := msg(3)
		m.ChildHash, m.Via = child, via
		if got, want := appendFragment(appendSeq(nil, 3), &m), encodeStd(t, 3, &m); !bytes.Equal(got, want) {
			t.Fatalf("got %s\nwant %s", got, want)
		}
	})
}

// Ensure that ReadBatch copies records of all three versions into a batch
// central decodes, keeps to the byte limit, and reuses the caller's buffer.
func TestReadBatch_VersionsAndLimit(t *testing.T) {
	path := tempPath(t)
	old := msgs(0, 3)
	withBolt(t, path, func(tx *bolt.Tx) error { return writeFormat1(tx, old) })
	o := mustOpen(t, path, Options{})
	synced := msg(3)
	synced.Synced = true
	if _, err := o.Append(context.Background(), []hearth.Message{synced}); err != nil {
		t.Fatal(err)
	}
	b := Batch{JSON: []byte(`{"messages":[`)}
	if err := o.ReadBatch(&b, 0, 10, 1<<20); err != nil {
		t.Fatal(err)
	}
	var want []byte
	for i, m := range append(old, synced) {
		if i > 0 {
			want = append(want, ',')
		}
		want = append(want, encodeStd(t, uint64(i+1), &m)...)
	}
	if got := b.JSON[len(`{"messages":[`):]; !bytes.Equal(got, want) {
		t.Fatalf("batch messages\n got %s\nwant %s", got, want)
	}
	if len(b.Seqs) != 4 || b.Seqs[3] != 4 {
		t.Fatalf("seqs %v", b.Seqs)
	}

	// A limit of the head and two messages takes two; buffers are reused.
	limit := len(`{"messages":[`) + len(encodeStd(t, 1, &old[0])) + 1 + len(encodeStd(t, 2, &old[1])) + 2
	buf := &b.JSON[0]
	b.JSON = append(b.JSON[:0], `{"messages":[`...)
	if err := o.ReadBatch(&b, 0, 10, limit); err != nil {
		t.Fatal(err)
	}
	if len(b.Seqs) != 2 || len(b.JSON)+2 > limit || &b.JSON[0] != buf {
		t.Fatalf("limit %d: seqs %v, %d bytes, buffer reused %v", limit, b.Seqs, len(b.JSON), &b.JSON[0] == buf)
	}
	if !json.Valid(append(b.JSON, "]}"...)) {
		t.Fatalf("invalid batch %s", b.JSON)
	}

	// After seq 2 (a batch of 1 and 2 in flight): 3 and 4.
	b.JSON = b.JSON[:0]
	if err := o.ReadBatch(&b, 2, 10, 1<<20); err != nil || len(b.Seqs) != 2 || b.Seqs[0] != 3 || b.Seqs[1] != 4 {
		t.Fatalf("ReadBatch after 2 = %v, %v", b.Seqs, err)
	}
}

// Ensure that queued deletes are skipped by reads at once, counted out of
// Depth, committed with the next append (one commit), and otherwise after
// the settle delay.
func TestDeleteLater_SkippedThenCommitted(t *testing.T) {
	o := mustOpen(t, tempPath(t), Options{SettleDelay: time.Hour})
	seqs, err := o.Append(context.Background(), msgs(0, 3))
	if err != nil {
		t.Fatal(err)
	}
	o.DeleteLater(seqs[0], seqs[1])
	o.DeadLetterLater(seqs[2], "refused")
	if recs := mustRead(t, o, 10); len(recs) != 0 {
		t.Fatalf("read %d records whose delete is queued", len(recs))
	}
	var b Batch
	if err := o.ReadBatch(&b, 0, 10, 1<<20); err != nil || len(b.Seqs) != 0 {
		t.Fatalf("ReadBatch = %v, %v", b.Seqs, err)
	}
	if s := o.Stats(); s.Depth != 0 || s.DeadLetters != 0 {
		t.Fatalf("stats with queued deletes = %+v", s)
	}
	commits := o.Stats().Commits
	if _, err := o.Append(context.Background(), msgs(3, 1)); err != nil {
		t.Fatal(err)
	}
	s, m3 := o.Stats(), msg(3)
	if s.Commits != commits+1 || s.Depth != 1 || s.DeadLetters != 1 || s.Bytes != int64(m3.Size()) {
		t.Fatalf("after the append: %+v (commits before %d)", s, commits)
	}
	if dead, _ := o.DeadLetters(10); len(dead) != 1 || dead[0].Reason != "refused" || dead[0].Msg.ChildHash != msg(2).ChildHash {
		t.Fatalf("dead letters %+v", dead)
	}
}

func TestDeleteLater_SettlesWithoutAppend(t *testing.T) {
	o := mustOpen(t, tempPath(t), Options{SettleDelay: 10 * time.Millisecond})
	seqs, err := o.Append(context.Background(), msgs(0, 2))
	if err != nil {
		t.Fatal(err)
	}
	o.DeleteLater(seqs...)
	deadline := time.Now().Add(5 * time.Second)
	for o.Stats().Bytes != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("queued deletes not committed: %+v", o.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Ensure that Close commits queued deletes, and that deletes lost before a
// commit (a crash) leave the messages pending: sent again, never lost.
func TestDeleteLater_CloseCommitsCrashResends(t *testing.T) {
	path := tempPath(t)
	o := mustOpen(t, path, Options{SettleDelay: time.Hour})
	seqs, err := o.Append(context.Background(), msgs(0, 4))
	if err != nil {
		t.Fatal(err)
	}
	o.DeleteLater(seqs[:2]...)
	mustClose(t, o)
	o = mustOpen(t, path, Options{SettleDelay: time.Hour})
	if s := o.Stats(); s.Depth != 2 {
		t.Fatalf("depth %d after Close with 2 queued deletes of 4, want 2", s.Depth)
	}
	// A crash: the queue is dropped without a commit (as kill -9 would).
	o.DeleteLater(seqs[2])
	o.deferred.mu.Lock()
	clear(o.deferred.items)
	o.deferred.mu.Unlock()
	recs := mustRead(t, o, 10)
	if len(recs) != 2 || recs[0].Seq != seqs[2] {
		t.Fatalf("after a lost delete read %+v", recs)
	}
	if !strings.Contains(string(recs[0].Msg.Data), `"n":2`) {
		t.Fatalf("record %+v", recs[0])
	}
}
