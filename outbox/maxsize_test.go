package outbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/guardianai/hearth"
)

// Ensure that a file at its size bound (bbolt's MaxSize, set on 32-bit
// CPUs) refuses the next batch with hearth.ErrFull, as a full disk does,
// keeps what it holds readable, and takes data again once drained.
func TestOutbox_MaxFileBytesRefusesAsFull(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	o := mustOpen(t, tempPath(t), Options{MaxFileBytes: 2 << 20, Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))})
	pad := strings.Repeat("x", 16<<10)
	ctx := context.Background()
	stored := 0
	var err error
	big := func(from int) []hearth.Message {
		ms := msgs(from, 4)
		for j := range ms {
			ms[j].Data = fmt.Appendf(nil, `{"n":%d,"pad":%q}`, from+j, pad)
		}
		return ms
	}
	for i := 0; i < 1000; i++ {
		if err = o.Store(ctx, big(stored)); err != nil {
			break
		}
		stored += 4
	}
	if !errors.Is(err, hearth.ErrFull) || stored == 0 {
		t.Fatalf("after %d messages: %v, want ErrFull", stored, err)
	}
	// A full disk fails every commit: the warning is rate-limited.
	for i := 0; i < 5; i++ {
		if err := o.Store(ctx, big(stored)); !errors.Is(err, hearth.ErrFull) {
			t.Fatalf("store %d at the bound: %v", i, err)
		}
	}
	mu.Lock()
	lines := strings.Count(logs.String(), "outbox commit failed")
	mu.Unlock()
	if lines != 1 {
		t.Fatalf("%d commit-failure lines for 6 failed commits, want 1 (rate-limited)", lines)
	}
	if st := o.Stats(); st.Depth != int64(stored) || st.FileBytes > 2<<20 {
		t.Fatalf("stats %+v after %d stored", st, stored)
	}
	recs := mustRead(t, o, stored)
	seqs := make([]uint64, len(recs))
	for i, r := range recs {
		seqs[i] = r.Seq
	}
	if err := o.Delete(seqs...); err != nil {
		t.Fatal(err)
	}
	if err := o.Store(ctx, msgs(0, 4)); err != nil {
		t.Fatalf("after draining: %v", err)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
