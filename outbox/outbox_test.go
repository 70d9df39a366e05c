package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardianai/hearth/internal/testutil"

	"github.com/guardianai/hearth"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	bolt "go.etcd.io/bbolt"
)

// Ensure that appended messages come back oldest first, with increasing
// sequence numbers, and that Delete removes exactly what it names.
func TestOutbox_Append_ReadDelete(t *testing.T) {
	o := mustOpen(t, tempPath(t), Options{})
	ctx := context.Background()

	var seqs []uint64
	for i := 0; i < 3; i++ {
		s, err := o.Append(ctx, msgs(i*2, 2))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s...)
	}
	if !slices.IsSorted(seqs) || len(slices.Compact(slices.Clone(seqs))) != 6 {
		t.Fatalf("seqs not strictly increasing: %v", seqs)
	}

	recs := mustRead(t, o, 100)
	if len(recs) != 6 {
		t.Fatalf("read %d records, want 6", len(recs))
	}
	for i, r := range recs {
		if r.Seq != seqs[i] {
			t.Fatalf("record %d: seq %d, want %d", i, r.Seq, seqs[i])
		}
		assertMsg(t, r.Msg, msg(i))
	}
	if got := mustRead(t, o, 2); len(got) != 2 || got[1].Seq != seqs[1] {
		t.Fatalf("ReadOldest(2) = %v", got)
	}

	if err := o.Delete(seqs[0], seqs[2], 999999); err != nil {
		t.Fatal(err)
	}
	if err := o.Delete(seqs[0]); err != nil {
		t.Fatalf("repeated Delete: %v", err)
	}
	recs = mustRead(t, o, 100)
	if got := seqsOf(recs); !slices.Equal(got, []uint64{seqs[1], seqs[3], seqs[4], seqs[5]}) {
		t.Fatalf("after delete: %v", got)
	}
	s := o.Stats()
	left := []hearth.Message{msg(1), msg(3), msg(4), msg(5)}
	if s.Depth != 4 || s.Bytes != sizeOf(left) || !s.OldestReceivedAt.Equal(msg(1).ReceivedAt) {
		t.Fatalf("stats = %+v", s)
	}
}

// Ensure that Stats tells which clock the oldest message's receive time is
// on, so that its age is taken on the same clock.
func TestOutbox_Stats_OldestSynced(t *testing.T) {
	o := mustOpen(t, tempPath(t), Options{})
	synced := msg(0)
	synced.Synced = true
	seqs, err := o.Append(context.Background(), []hearth.Message{synced, msg(1)})
	if err != nil {
		t.Fatal(err)
	}
	if s := o.Stats(); !s.OldestSynced || !s.OldestReceivedAt.Equal(synced.ReceivedAt) {
		t.Fatalf("stats = %+v, want the synced head", s)
	}
	if err := o.Delete(seqs[0]); err != nil {
		t.Fatal(err)
	}
	if s := o.Stats(); s.OldestSynced || !s.OldestReceivedAt.Equal(msg(1).ReceivedAt) {
		t.Fatalf("stats = %+v, want the unsynced head", s)
	}
}

// Ensure that Append of nothing commits nothing.
func TestOutbox_Append_Empty(t *testing.T) {
	o := mustOpen(t, tempPath(t), Options{})
	seqs, err := o.Append(context.Background(), nil)
	if err != nil || seqs != nil || o.Stats().Commits != 0 {
		t.Fatalf("Append(nil) = %v, %v; commits %d", seqs, err, o.Stats().Commits)
	}
}

// Ensure that a reopened outbox has every message and the right counters,
// and continues the sequence.
func TestOutbox_Open_Reopen(t *testing.T) {
	path := tempPath(t)
	o := mustOpen(t, path, Options{})
	seqs, err := o.Append(context.Background(), msgs(0, 10))
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Delete(seqs[:3]...); err != nil {
		t.Fatal(err)
	}
	if err := o.DeadLetter(seqs[3], "test"); err != nil {
		t.Fatal(err)
	}
	before := o.Stats()
	mustClose(t, o)

	o = mustOpen(t, path, Options{})
	after := o.Stats()
	if after.Depth != 6 || after.Bytes != sizeOf(msgs(4, 6)) || after.DeadLetters != 1 ||
		!after.OldestReceivedAt.Equal(msg(4).ReceivedAt) || after.FileBytes == 0 {
		t.Fatalf("stats after reopen = %+v (before %+v)", after, before)
	}
	recs := mustRead(t, o, 100)
	if !slices.Equal(seqsOf(recs), seqs[4:]) {
		t.Fatalf("seqs after reopen = %v, want %v", seqsOf(recs), seqs[4:])
	}
	assertMsg(t, recs[0].Msg, msg(4))
	next, err := o.Append(context.Background(), msgs(10, 1))
	if err != nil || next[0] <= seqs[9] {
		t.Fatalf("seq after reopen = %v, %v; want > %d", next, err, seqs[9])
	}
}

// Ensure that concurrent callers share commits: every append is stored
// with its own seq, in fewer commits than appends.
func TestOutbox_Append_GroupCommit(t *testing.T) {
	o := mustOpen(t, tempPath(t), Options{})
	const writers, each = 100, 5
	var (
		mu   sync.Mutex
		all  []uint64
		wg   sync.WaitGroup
		stop = make(chan struct{})
	)
	go func() { // Stats must be safe alongside the writer
		for {
			select {
			case <-stop:
				return
			default:
				_ = o.Stats()
			}
		}
	}()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				s, err := o.Append(context.Background(), msgs(w*each+i, 1))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				all = append(all, s...)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(stop)

	slices.Sort(all)
	if len(slices.Compact(all)) != writers*each {
		t.Fatalf("%d distinct seqs, want %d", len(slices.Compact(all)), writers*each)
	}
	s := o.Stats()
	if s.Depth != writers*each {
		t.Fatalf("depth %d, want %d", s.Depth, writers*each)
	}
	if s.Commits >= writers*each {
		t.Fatalf("%d commits for %d appends: no grouping", s.Commits, writers*each)
	}
	t.Logf("%d appends in %d commits", writers*each, s.Commits)
}

// Ensure that the message quota refuses a whole batch with ErrFull, keeps
// what was stored, and frees space on Delete.
func TestOutbox_Append_QuotaMessages(t *testing.T) {
	o := mustOpen(t, tempPath(t), Options{MaxMessages: 5})
	ctx := context.Background()
	seqs, err := o.Append(ctx, msgs(0, 4))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Append(ctx, msgs(4, 2)); !errors.Is(err, hearth.ErrFull) {
		t.Fatalf("Append over quota: %v, want ErrFull", err)
	}
	if got := mustRead(t, o, 10); !slices.Equal(seqsOf(got), seqs) {
		t.Fatalf("after refusal: %v, want %v", seqsOf(got), seqs)
	}
	if _, err := o.Append(ctx, msgs(4, 1)); err != nil {
		t.Fatalf("Append up to quota: %v", err)
	}
	if err := o.Delete(seqs[:2]...); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Append(ctx, msgs(5, 2)); err != nil {
		t.Fatalf("Append after Delete: %v", err)
	}
	if d := o.Stats().Depth; d != 5 {
		t.Fatalf("depth %d, want 5", d)
	}
}

// Ensure that the byte quota counts hearth.Message.Size and refuses a batch
// that does not fit, while a smaller one still does.
func TestOutbox_Append_QuotaBytes(t *testing.T) {
	o := mustOpen(t, tempPath(t), Options{MaxBytes: sizeOf(msgs(0, 3)) + 10})
	ctx := context.Background()
	seqs, err := o.Append(ctx, msgs(0, 2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Append(ctx, msgs(2, 2)); !errors.Is(err, hearth.ErrFull) {
		t.Fatalf("Append over byte quota: %v, want ErrFull", err)
	}
	if s := o.Stats(); s.Depth != 2 || s.Bytes != sizeOf(msgs(0, 2)) {
		t.Fatalf("stats after refusal = %+v", s)
	}
	if _, err := o.Append(ctx, msgs(2, 1)); err != nil {
		t.Fatalf("Append that fits: %v", err)
	}
	if err := o.Delete(seqs...); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Append(ctx, msgs(3, 2)); err != nil {
		t.Fatalf("Append after Delete: %v", err)
	}
	if got := mustRead(t, o, 10); len(got) != 3 {
		t.Fatalf("read %d, want 3", len(got))
	}
}

// Ensure that a request refused for quota does not fail the others that
// share its commit: with room for 30, exactly 30 of 100 concurrent appends succeed.
func TestOutbox_Append_QuotaPerRequest(t *testing.T) {
	o := mustOpen(t, tempPath(t), Options{MaxMessages: 30})
	var ok, full atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := o.Append(context.Background(), msgs(i, 1))
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, hearth.ErrFull):
				full.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 30 || full.Load() != 70 || o.Stats().Depth != 30 {
		t.Fatalf("ok %d, full %d, depth %d; want 30, 70, 30", ok.Load(), full.Load(), o.Stats().Depth)
	}
	if got := refused(t, o, "full"); got != 70 {
		t.Fatalf("refused{full} = %v, want 70", got)
	}
}

// Ensure that a dead-lettered message leaves the queue and is listed with
// its reason and time, and that the counters follow.
func TestOutbox_DeadLetter(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	o := mustOpen(t, tempPath(t), Options{Now: func() time.Time { return at }})
	seqs, err := o.Append(context.Background(), msgs(0, 3))
	if err != nil {
		t.Fatal(err)
	}
	if err := o.DeadLetter(seqs[0], "unknown child"); err != nil {
		t.Fatal(err)
	}
	if err := o.DeadLetter(seqs[0], "unknown child"); err != nil {
		t.Fatalf("repeated DeadLetter: %v", err)
	}
	if err := o.DeadLetter(12345, "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DeadLetter of unknown seq: %v, want ErrNotFound", err)
	}
	if got := seqsOf(mustRead(t, o, 10)); !slices.Equal(got, seqs[1:]) {
		t.Fatalf("pending = %v, want %v", got, seqs[1:])
	}
	dl, err := o.DeadLetters(10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) != 1 || dl[0].Seq != seqs[0] || dl[0].Reason != "unknown child" || !dl[0].At.Equal(at) || dl[0].Raw != nil {
		t.Fatalf("dead letters = %+v", dl)
	}
	assertMsg(t, dl[0].Msg, msg(0))
	s := o.Stats()
	if s.Depth != 2 || s.DeadLetters != 1 || s.Bytes != sizeOf(msgs(1, 2)) || !s.OldestReceivedAt.Equal(msg(1).ReceivedAt) {
		t.Fatalf("stats = %+v", s)
	}
}

// Ensure that a stored record that does not decode is moved to the dead
// letters by ReadOldest instead of failing or blocking the queue.
func TestOutbox_ReadOldest_BadRecord(t *testing.T) {
	path := tempPath(t)
	o := mustOpen(t, path, Options{})
	seqs, err := o.Append(context.Background(), msgs(0, 3))
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, o)
	garbage := []byte{1, 0xff, 0xff, 0xff, 'x', 'y'}
	withBolt(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPending).Put(seqKey(seqs[1]), garbage)
	})

	o = mustOpen(t, path, Options{})
	recs := mustRead(t, o, 10)
	if got := seqsOf(recs); !slices.Equal(got, []uint64{seqs[0], seqs[2]}) {
		t.Fatalf("read %v, want %v", got, []uint64{seqs[0], seqs[2]})
	}
	dl, err := o.DeadLetters(10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) != 1 || dl[0].Seq != seqs[1] || !strings.HasPrefix(dl[0].Reason, "undecodable record") || !bytes.Equal(dl[0].Raw, garbage) {
		t.Fatalf("dead letters = %+v", dl)
	}
	if s := o.Stats(); s.Depth != 2 || s.DeadLetters != 1 {
		t.Fatalf("stats = %+v", s)
	}
	if err := o.Delete(seqs...); err != nil {
		t.Fatal(err)
	}
	if s := o.Stats(); s.Depth != 0 || s.Bytes != 0 || !s.OldestReceivedAt.IsZero() {
		t.Fatalf("stats of empty outbox = %+v", s)
	}
}

// Ensure that a file that cannot be opened is moved aside, said so at
// ERROR, and replaced by a working empty outbox.
func TestOpen_Corrupt(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(t *testing.T, path string)
	}{
		{"garbage", func(t *testing.T, path string) {
			writeFile(t, path, bytes.Repeat([]byte("not a bbolt file "), 4096))
		}},
		{"tiny", func(t *testing.T, path string) { writeFile(t, path, []byte("hello")) }},
		{"empty", func(t *testing.T, path string) { writeFile(t, path, nil) }},
		{"truncated", func(t *testing.T, path string) {
			o := mustOpen(t, path, Options{})
			for i := 0; i < 20; i++ {
				if _, err := o.Append(context.Background(), msgs(i*50, 50)); err != nil {
					t.Fatal(err)
				}
			}
			mustClose(t, o)
			if err := os.Truncate(path, usedBytes(t, path)/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"meta page", func(t *testing.T, path string) {
			mustClose(t, mustOpen(t, path, Options{}))
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for _, off := range []int64{16, 4096 + 16} { // both meta pages
				if _, err := f.WriteAt([]byte("scribble"), off); err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tempPath(t)
			tc.make(t, path)
			before, _ := os.ReadFile(path)
			var log testutil.SyncBuffer
			o := mustOpen(t, path, Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})

			asides, _ := filepath.Glob(path + ".corrupt-*")
			if len(asides) != 1 {
				t.Fatalf("aside files: %v", asides)
			}
			if moved, _ := os.ReadFile(asides[0]); tc.name != "empty" && !bytes.Equal(moved, before) {
				t.Fatalf("aside file differs from the corrupt one")
			}
			if l := log.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, asides[0]) {
				t.Fatalf("log does not name the aside file at ERROR:\n%s", l)
			}
			if _, err := o.Append(context.Background(), msgs(0, 2)); err != nil {
				t.Fatal(err)
			}
			if got := mustRead(t, o, 10); len(got) != 2 {
				t.Fatalf("fresh outbox read %d, want 2", len(got))
			}
		})
	}
}

// Ensure that a file of a newer format is refused with ErrNewerFormat and
// left exactly as it was.
func TestOpen_NewerFormat(t *testing.T) {
	path := tempPath(t)
	mustClose(t, mustOpen(t, path, Options{}))
	withBolt(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyFormat, seqKey(FormatVersion+1))
	})
	before, _ := os.ReadFile(path)

	o, err := Open(path, Options{})
	if !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("Open = %v, %v; want ErrNewerFormat", o, err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("format %d", FormatVersion+1)) {
		t.Fatalf("error does not name the format: %v", err)
	}
	after, _ := os.ReadFile(path)
	asides, _ := filepath.Glob(path + ".corrupt-*")
	if !bytes.Equal(before, after) || len(asides) != 0 {
		t.Fatalf("file touched (%v) or moved aside (%v)", !bytes.Equal(before, after), asides)
	}
}

// Ensure that a file without a format version (an older file) is migrated:
// its records are kept and counted.
func TestOpen_MigrateUnversioned(t *testing.T) {
	path := tempPath(t)
	withBolt(t, path, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketPending)
		if err != nil {
			return err
		}
		for i, m := range msgs(0, 3) {
			if err := b.Put(seqKey(uint64(i+1)), appendRecord(nil, &m)); err != nil {
				return err
			}
		}
		return b.SetSequence(3)
	})
	o := mustOpen(t, path, Options{})
	if s := o.Stats(); s.Depth != 3 || s.Bytes != sizeOf(msgs(0, 3)) || !s.OldestReceivedAt.Equal(msg(0).ReceivedAt) {
		t.Fatalf("stats = %+v", s)
	}
	seqs, err := o.Append(context.Background(), msgs(3, 1))
	if err != nil || seqs[0] != 4 {
		t.Fatalf("Append = %v, %v; want seq 4", seqs, err)
	}
	mustClose(t, o)
	withBolt(t, path, func(tx *bolt.Tx) error {
		if v, _, _ := getU64(tx.Bucket(bucketMeta), keyFormat); v != FormatVersion {
			t.Errorf("format after migration = %d", v)
		}
		return nil
	})
}

// Ensure that a format 1 file (version 1 records, counters set) opens
// with the right counters, yields its records as not synced, takes new synced
// records beside them, and is format 2 afterwards.
func TestOpen_MigrateFormat1(t *testing.T) {
	path := tempPath(t)
	old := msgs(0, 3)
	withBolt(t, path, func(tx *bolt.Tx) error {
		return writeFormat1(tx, old)
	})
	o := mustOpen(t, path, Options{})
	if s := o.Stats(); s.Depth != 3 || s.Bytes != sizeOf(old) || !s.OldestReceivedAt.Equal(old[0].ReceivedAt) || s.OldestSynced {
		t.Fatalf("stats = %+v", s)
	}
	synced := msg(3)
	synced.Synced = true
	if _, err := o.Append(context.Background(), []hearth.Message{synced}); err != nil {
		t.Fatal(err)
	}
	recs := mustRead(t, o, 10)
	if len(recs) != 4 {
		t.Fatalf("read %d records, want 4", len(recs))
	}
	for i, r := range recs[:3] {
		assertMsg(t, r.Msg, old[i])
		if r.Msg.Synced {
			t.Fatalf("version 1 record %d read as synced", r.Seq)
		}
	}
	if assertMsg(t, recs[3].Msg, synced); !recs[3].Msg.Synced {
		t.Fatal("the synced flag was lost")
	}
	mustClose(t, o)
	withBolt(t, path, func(tx *bolt.Tx) error {
		if v, _, _ := getU64(tx.Bucket(bucketMeta), keyFormat); v != FormatVersion {
			t.Errorf("format after migration = %d", v)
		}
		return nil
	})
}

// writeFormat1 lays out a format 1 file holding msgs as version 1 records,
// as a build of format 1 left it.
func writeFormat1(tx *bolt.Tx, msgs []hearth.Message) error {
	pending, err := tx.CreateBucket(bucketPending)
	if err != nil {
		return err
	}
	if _, err := tx.CreateBucket(bucketDead); err != nil {
		return err
	}
	for i, m := range msgs {
		if err := pending.Put(seqKey(uint64(i+1)), recordV1Of(m)); err != nil {
			return err
		}
	}
	if err := pending.SetSequence(uint64(len(msgs))); err != nil {
		return err
	}
	meta, err := tx.CreateBucket(bucketMeta)
	if err != nil {
		return err
	}
	st := state{depth: int64(len(msgs)), bytes: sizeOf(msgs)}
	if _, err := st.put(meta, nil); err != nil {
		return err
	}
	return meta.Put(keyFormat, seqKey(1))
}

// Ensure that a second Open of a file in use fails with ErrLocked within
// about OpenTimeout, and neither moves the file nor disturbs the first.
func TestOpen_Locked(t *testing.T) {
	path := tempPath(t)
	o := mustOpen(t, path, Options{})
	start := time.Now()
	o2, err := Open(path, Options{OpenTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, %v; want ErrLocked", o2, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("second Open took %s", d)
	}
	if asides, _ := filepath.Glob(path + ".corrupt-*"); len(asides) != 0 {
		t.Fatalf("moved aside: %v", asides)
	}
	if _, err := o.Append(context.Background(), msgs(0, 1)); err != nil {
		t.Fatal(err)
	}
}

// Ensure that a pending check marker makes Open check the file and is
// then removed.
func TestOpen_CheckMarker(t *testing.T) {
	path := tempPath(t)
	mustClose(t, mustOpen(t, path, Options{}))
	writeFile(t, path+suffixCheck, nil)
	mustOpen(t, path, Options{CheckMaxBytes: -1})
	if _, err := os.Stat(path + suffixCheck); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("marker still there: %v", err)
	}
}

// Ensure that Compact shrinks a file emptied after a backlog, keeps every
// message and the sequence, and that appends issued meanwhile all succeed.
func TestOutbox_Compact(t *testing.T) {
	path := tempPath(t)
	o := mustOpen(t, path, Options{})
	ctx := context.Background()
	if did, err := o.CompactIfWorthwhile(); did || err != nil {
		t.Fatalf("CompactIfWorthwhile on a small file = %v, %v", did, err)
	}
	big := bytes.Repeat([]byte("x"), 1000)
	var seqs []uint64
	for i := 0; i < 40; i++ {
		batch := msgs(i*500, 500)
		for j := range batch {
			batch[j].Data = fmt.Appendf(nil, `{"pad":%q}`, big)
		}
		s, err := o.Append(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s...)
	}
	keep := seqs[len(seqs)-100:]
	if err := o.Delete(seqs[:len(seqs)-100]...); err != nil {
		t.Fatal(err)
	}
	before := o.Stats()

	var (
		wg       sync.WaitGroup
		stop     atomic.Bool
		appended sync.Map
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				m := msg(100000 + w*10000 + i)
				s, err := o.Append(ctx, []hearth.Message{m})
				if err != nil {
					t.Errorf("Append during Compact: %v", err)
					return
				}
				appended.Store(s[0], m)
			}
		}()
	}
	testutil.WaitFor(t, 2*time.Second, func() error {
		if o.Stats().Commits < before.Commits+5 {
			return errors.New("appenders not running yet")
		}
		return nil
	})
	did, err := o.CompactIfWorthwhile()
	stop.Store(true)
	wg.Wait()
	if err != nil || !did {
		t.Fatalf("CompactIfWorthwhile = %v, %v", did, err)
	}
	after := o.Stats()
	if after.FileBytes >= before.FileBytes/4 {
		t.Fatalf("file %d bytes after compaction, %d before", after.FileBytes, before.FileBytes)
	}
	t.Logf("file %d -> %d bytes", before.FileBytes, after.FileBytes)

	n := 0
	appended.Range(func(_, _ any) bool { n++; return true })
	if after.Depth != int64(len(keep)+n) {
		t.Fatalf("depth %d, want %d", after.Depth, len(keep)+n)
	}
	mustClose(t, o)
	o = mustOpen(t, path, Options{})
	recs := mustRead(t, o, 1<<20)
	if !slices.Equal(seqsOf(recs[:len(keep)]), keep) || len(recs) != len(keep)+n {
		t.Fatalf("after compaction: %d records, first %v", len(recs), seqsOf(recs[:3]))
	}
	for _, r := range recs[len(keep):] {
		m, ok := appended.Load(r.Seq)
		if !ok {
			t.Fatalf("unexpected seq %d", r.Seq)
		}
		assertMsg(t, r.Msg, m.(hearth.Message))
	}
	s, err := o.Append(ctx, msgs(0, 1))
	if err != nil || s[0] <= recs[len(recs)-1].Seq {
		t.Fatalf("seq after compaction = %v, %v", s, err)
	}
	if err := o.Compact(); err != nil {
		t.Fatalf("Compact with nothing to gain: %v", err)
	}
}

// Ensure that appends racing Close either succeed and are on disk, or fail
// with ErrUnavailable; never a success that was not stored.
func TestOutbox_Close_RacingAppends(t *testing.T) {
	path := tempPath(t)
	o := mustOpen(t, path, Options{})
	var (
		wg   sync.WaitGroup
		acks sync.Map
		nOK  atomic.Int64
	)
	for w := 0; w < 20; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				m := msg(w*100000 + i)
				s, err := o.Append(context.Background(), []hearth.Message{m})
				if err != nil {
					if !errors.Is(err, hearth.ErrUnavailable) {
						t.Errorf("Append racing Close: %v", err)
					}
					return
				}
				acks.Store(s[0], m)
				nOK.Add(1)
			}
		}()
	}
	testutil.WaitFor(t, 5*time.Second, func() error {
		if nOK.Load() < 200 {
			return errors.New("too few appends yet")
		}
		return nil
	})
	mustClose(t, o)
	wg.Wait()
	if err := o.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := o.ReadOldest(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadOldest after Close: %v", err)
	}
	if got := refused(t, o, "closed"); got < 1 {
		t.Fatalf("refused{closed} = %v", got)
	}

	o = mustOpen(t, path, Options{})
	stored := map[uint64]hearth.Message{}
	for _, r := range mustRead(t, o, 1<<20) {
		stored[r.Seq] = r.Msg
	}
	acks.Range(func(k, v any) bool {
		m, ok := stored[k.(uint64)]
		if !ok {
			t.Fatalf("acked seq %d not on disk", k)
		}
		assertMsg(t, m, v.(hearth.Message))
		return true
	})
	t.Logf("%d acked before Close, %d stored", nOK.Load(), len(stored))
}

// Ensure that an Append whose context is already done is not stored.
func TestOutbox_Append_Cancelled(t *testing.T) {
	o := mustOpen(t, tempPath(t), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := o.Append(ctx, msgs(0, 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append = %v, want context.Canceled", err)
	}
	if d := o.Stats().Depth; d != 0 {
		t.Fatalf("depth %d, want 0", d)
	}
}

// Ensure that Store satisfies the ingest.Sink contract: durable on nil,
// ErrUnavailable after Close.
func TestOutbox_Store(t *testing.T) {
	path := tempPath(t)
	o := mustOpen(t, path, Options{})
	if err := o.Store(context.Background(), msgs(0, 3)); err != nil {
		t.Fatal(err)
	}
	mustClose(t, o)
	if err := o.Store(context.Background(), msgs(3, 1)); !errors.Is(err, hearth.ErrUnavailable) {
		t.Fatalf("Store after Close = %v, want ErrUnavailable", err)
	}
	if got := mustRead(t, mustOpen(t, path, Options{}), 10); len(got) != 3 {
		t.Fatalf("read %d, want 3", len(got))
	}
}

// Ensure that the collector exports every outbox metric with the values of Stats.
func TestOutbox_Collector(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	o := mustOpen(t, tempPath(t), Options{Now: func() time.Time { return now }})
	m := msg(0)
	m.ReceivedAt = now.Add(-90 * time.Second)
	seqs, err := o.Append(context.Background(), []hearth.Message{m, msg(1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.DeadLetter(seqs[1], "invalid"); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(o.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			switch {
			case mt.GetGauge() != nil:
				got[mf.GetName()] = mt.GetGauge().GetValue()
			case mt.GetHistogram() != nil:
				got[mf.GetName()] = float64(mt.GetHistogram().GetSampleCount())
			case mt.GetCounter() != nil && len(mt.GetLabel()) == 0:
				got[mf.GetName()] = mt.GetCounter().GetValue()
			case mt.GetCounter() != nil:
				got[mf.GetName()+"{"+mt.GetLabel()[0].GetValue()+"}"] = mt.GetCounter().GetValue()
			}
		}
	}
	want := map[string]float64{
		"hearth_outbox_pending_messages":      1,
		"hearth_outbox_pending_bytes":         float64(m.Size()),
		"hearth_outbox_oldest_age_seconds":    90,
		"hearth_outbox_dead_letters":          1,
		"hearth_outbox_commit_seconds":        2,
		"hearth_outbox_commit_batch_messages": 2,
		"hearth_outbox_refused_total{full}":   0,
		"hearth_outbox_refused_total{closed}": 0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if got["hearth_outbox_file_bytes"] <= 0 {
		t.Errorf("hearth_outbox_file_bytes = %v", got["hearth_outbox_file_bytes"])
	}
	// Two commits, each at least a leaf page and the meta page.
	if w := got["hearth_outbox_written_bytes_total"]; w < 2*2*4096 {
		t.Errorf("hearth_outbox_written_bytes_total = %v, want at least two commits of two pages", w)
	}
}

// --- helpers ---

func tempPath(t testing.TB) string { return filepath.Join(t.TempDir(), "outbox.db") }

func mustOpen(t testing.TB, path string, opts Options) *Outbox {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	o, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Close() })
	return o
}

func mustClose(t testing.TB, o *Outbox) {
	t.Helper()
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t testing.TB, o *Outbox, n int) []Record {
	t.Helper()
	recs, err := o.ReadOldest(n)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

var epoch = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

// msg is the i-th test message; messages differ in every field.
func msg(i int) hearth.Message {
	kind, via := hearth.Kinds[i%3], hearth.ViaWS
	if i%2 == 1 {
		via = hearth.ViaHTTP
	}
	return hearth.Message{
		ChildHash:  fmt.Sprintf("child-%04d", i%97),
		Kind:       kind,
		ReceivedAt: epoch.Add(time.Duration(i)*time.Second + time.Duration(i)),
		Via:        via,
		Data:       fmt.Appendf(nil, `{"n":%d}`, i),
	}
}

func msgs(from, n int) []hearth.Message {
	out := make([]hearth.Message, n)
	for i := range out {
		out[i] = msg(from + i)
	}
	return out
}

func sizeOf(ms []hearth.Message) int64 {
	var n int64
	for i := range ms {
		n += int64(ms[i].Size())
	}
	return n
}

func seqsOf(recs []Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

func assertMsg(t testing.TB, got, want hearth.Message) {
	t.Helper()
	if got.ChildHash != want.ChildHash || got.Kind != want.Kind || got.Via != want.Via ||
		!got.ReceivedAt.Equal(want.ReceivedAt) || !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("message = %+v, want %+v", got, want)
	}
}

// withBolt runs fn in a write transaction on the file, bypassing the outbox.
func withBolt(t testing.TB, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// usedBytes is how far into the file bbolt's pages reach.
func usedBytes(t testing.TB, path string) int64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	_ = db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func refused(t testing.TB, o *Outbox, reason string) float64 {
	t.Helper()
	var m dto.Metric
	if err := o.metrics.refused.WithLabelValues(reason).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
