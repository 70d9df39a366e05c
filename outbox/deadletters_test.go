package outbox

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	bolt "go.etcd.io/bbolt"
)

// deadOf appends ms and dead-letters each with the reason reasons gives it.
func deadOf(t *testing.T, o *Outbox, ms []hearth.Message, reason func(i int) string) []uint64 {
	t.Helper()
	seqs, err := o.Append(context.Background(), ms)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range seqs {
		if err := o.DeadLetter(s, reason(i)); err != nil {
			t.Fatal(err)
		}
	}
	return seqs
}

// Ensure that the code of each reason the edge writes is read back, for
// reasons of this build and the previous one's texts.
func TestDeadCode(t *testing.T) {
	for reason, want := range map[string]string{
		DeadReason("unknown_child", "unknown child"):                                       "unknown_child",
		DeadReason("", "unknown child"):                                                    "unknown_child",
		"rejected by central: child does not belong to this home":                          "foreign_child",
		"rejected by central: timestamp: x is older than the retention window of 365 days": hearth.CodeTooOld,
		"rejected by central: latitude: must be a JSON number":                             DeadRejected,
		ReasonTooLargePrefix + "central answered 413: split it":                            DeadTooLarge,
		ReasonPoisonPrefix + "central answered 500: internal error":                        DeadPoison,
		"undecodable record: checksum mismatch":                                            DeadUndecodable,
		"moved by hand":                                                                    DeadOther,
	} {
		if got := DeadCode(reason); got != want {
			t.Errorf("DeadCode(%q) = %q, want %q", reason, got, want)
		}
	}
}

// Ensure that dead letters are listed with their code, child, type and
// size, filtered by code, child (its start) and age, and counted by code.
func TestDeadLetters_ListAndCount(t *testing.T) {
	o := mustOpen(t, tempPath(t), Options{})
	ms := msgs(0, 6)
	deadOf(t, o, ms, func(i int) string {
		if i%2 == 0 {
			return DeadReason("unknown_child", "unknown child")
		}
		return ReasonTooLargePrefix + "central answered 413"
	})
	all, err := o.ListDeadLetters(DeadFilter{})
	if err != nil || len(all) != 6 {
		t.Fatalf("list all: %d, %v", len(all), err)
	}
	if d := all[0]; d.Code != "unknown_child" || d.Msg.ChildHash != ms[0].ChildHash || d.Msg.Kind != ms[0].Kind ||
		!d.Msg.ReceivedAt.Equal(ms[0].ReceivedAt) || d.Size != int64(ms[0].Size()) {
		t.Fatalf("first dead letter %+v", d)
	}
	byCode, _ := o.ListDeadLetters(DeadFilter{Code: "too_large"})
	byChild, _ := o.ListDeadLetters(DeadFilter{Child: ms[2].ChildHash[:9]})
	old, _ := o.ListDeadLetters(DeadFilter{Until: ms[1].ReceivedAt})
	limited, _ := o.ListDeadLetters(DeadFilter{Limit: 2})
	if len(byCode) != 3 || len(byChild) != 6 || len(old) != 2 || len(limited) != 2 {
		t.Fatalf("filtered: code %d, child %d, age %d, limit %d", len(byCode), len(byChild), len(old), len(limited))
	}
	counts, err := o.DeadCounts()
	if err != nil || counts["unknown_child"] != 3 || counts["too_large"] != 3 || len(counts) != 2 {
		t.Fatalf("counts %v %v", counts, err)
	}
}

// Ensure that a retry puts dead letters back at the end of the queue with
// a new seq and their original received_at, and that what the quota
// holds does not change.
func TestDeadLetters_RetryRoundTrip(t *testing.T) {
	o := mustOpen(t, tempPath(t), Options{})
	ms := msgs(0, 3)
	seqs := deadOf(t, o, ms, func(int) string { return DeadReason("unknown_child", "unknown child") })
	if err := o.Store(context.Background(), msgs(10, 1)); err != nil {
		t.Fatal(err)
	}
	res, err := o.RetryDeadLetters(context.Background(), DeadFilter{Code: "unknown_child"})
	if err != nil || res.Retried != 3 || res.Skipped != 0 {
		t.Fatalf("retry %+v %v", res, err)
	}
	recs := mustRead(t, o, 10)
	if len(recs) != 4 || o.Stats().DeadLetters != 0 || o.Stats().Depth != 4 {
		t.Fatalf("after retry: %d pending, stats %+v", len(recs), o.Stats())
	}
	for i, r := range recs[1:] {
		if r.Seq <= seqs[2] || !r.Msg.ReceivedAt.Equal(ms[i].ReceivedAt) || string(r.Msg.Data) != string(ms[i].Data) {
			t.Errorf("retried %d: seq %d (old %d), %+v", i, r.Seq, seqs[i], r.Msg)
		}
	}
	if got := o.Stats().Bytes; got != sizeOf(msgs(0, 3))+sizeOf(msgs(10, 1)) {
		t.Fatalf("bytes %d after retry", got)
	}
}

// Ensure that dead letters count against the quota, that a retry the
// quota has no room for (it was lowered) is refused with the reason and
// keeps the dead letters, and that the counters survive a reopen.
func TestDeadLetters_CountAgainstQuota(t *testing.T) {
	path := tempPath(t)
	o := mustOpen(t, path, Options{MaxMessages: 4})
	deadOf(t, o, msgs(0, 3), func(int) string { return DeadReason("", "unknown child") })
	if err := o.Store(context.Background(), msgs(10, 2)); !errors.Is(err, hearth.ErrFull) {
		t.Fatalf("2 more beside 3 dead letters under a quota of 4: %v, want ErrFull", err)
	}
	if err := o.Store(context.Background(), msgs(10, 1)); err != nil {
		t.Fatal(err)
	}
	mustClose(t, o)

	o = mustOpen(t, path, Options{MaxMessages: 3})
	res, err := o.RetryDeadLetters(context.Background(), DeadFilter{})
	if !errors.Is(err, ErrRetryFull) || res.Retried != 0 || o.Stats().DeadLetters != 3 {
		t.Fatalf("retry over a lowered quota: %+v, %v, stats %+v", res, err, o.Stats())
	}
	if _, err := o.PurgeDeadLetters(context.Background(), DeadFilter{Limit: 1}, false); !errors.Is(err, ErrPurgeNeedsFilter) {
		t.Fatalf("purge without a filter: %v", err)
	}
	if n, err := o.PurgeDeadLetters(context.Background(), DeadFilter{Code: "unknown_child", Limit: 1}, false); n != 1 || err != nil {
		t.Fatalf("purge one: %d %v", n, err)
	}
	if res, err := o.RetryDeadLetters(context.Background(), DeadFilter{}); err != nil || res.Retried != 2 {
		t.Fatalf("retry after the purge made room: %+v %v", res, err)
	}
	if st := o.Stats(); st.Depth != 3 || st.DeadLetters != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// Ensure that dead letters beyond their cap purge the oldest, and that
// those older than the retention window are purged by
// PurgeExpiredDeadLetters.
func TestDeadLetters_CapAndRetention(t *testing.T) {
	now := epoch.Add(10 * time.Second)
	o := mustOpen(t, tempPath(t), Options{DeadMaxMessages: 3, DeadRetention: 5 * time.Second, SettleDelay: time.Millisecond,
		Now: func() time.Time { return now }})
	seqs, err := o.Append(context.Background(), msgs(0, 5))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range seqs {
		o.DeadLetterLater(s, DeadReason("", "unknown child"))
	}
	if err := o.Store(context.Background(), msgs(20, 1)); err != nil { // commits the moves
		t.Fatal(err)
	}
	dead, _ := o.ListDeadLetters(DeadFilter{})
	if len(dead) != 3 || dead[0].Seq != seqs[2] {
		t.Fatalf("capped dead letters: %d, first %+v", len(dead), dead)
	}
	// msgs(i) is received at epoch + i s: 2, 3, 4 s; the window keeps
	// what was received after now - 5 s = epoch + 5 s: nothing.
	n, err := o.PurgeExpiredDeadLetters(context.Background())
	if err != nil || n != 3 || o.Stats().DeadLetters != 0 {
		t.Fatalf("expired purge: %d %v, stats %+v", n, err, o.Stats())
	}
}

// Ensure that a file of this format written before dead letters counted
// against the quota (no dead_bytes counter) opens with the dead letters'
// bytes summed (without a recount of the queue) and counted in the quota.
func TestDeadLetters_BytesOfAnOlderFile(t *testing.T) {
	path := tempPath(t)
	o := mustOpen(t, path, Options{})
	ms := msgs(0, 3)
	deadOf(t, o, ms[:2], func(int) string { return DeadReason("", "unknown child") })
	if err := o.Store(context.Background(), ms[2:]); err != nil {
		t.Fatal(err)
	}
	mustClose(t, o)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyDeadBytes) }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	want := sizeOf(ms[:2])
	o = mustOpen(t, path, Options{MaxBytes: want + sizeOf(ms[2:]) + 1})
	if o.state.deadBytes != want {
		t.Fatalf("dead bytes %d, want %d", o.state.deadBytes, want)
	}
	if err := o.Store(context.Background(), msgs(10, 1)); !errors.Is(err, hearth.ErrFull) {
		t.Fatalf("a message past the quota with the dead letters counted: %v", err)
	}
}
