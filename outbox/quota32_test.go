package outbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/guardianai/hearth"
)

// Ensure that on a 32-bit CPU an outbox filled to hearthd's default quota
// there (256 MiB of messages; bbolt maps the whole file and a 32-bit process
// has little address space) takes messages up to the quota, refuses the
// next batch with ErrFull, opens again (the whole file mapped at once) and
// drains to empty. It runs on 32-bit builds ("make cross-test" on armv7 and
// mipsle, under qemu); on 64-bit the quota is 1 GiB and bounded by the disk,
// and HEARTH_TEST_FILL_QUOTA=1 runs it there too.
func TestOutbox_FillDefaultQuota32(t *testing.T) {
	if strconv.IntSize != 32 && os.Getenv("HEARTH_TEST_FILL_QUOTA") == "" {
		t.Skip("32-bit builds only (make cross-test); HEARTH_TEST_FILL_QUOTA=1 runs it here")
	}
	const quota = 256 << 20 // daemon's defaultOutboxMaxBytes on 32-bit
	const perBatch = 32
	pad := strings.Repeat("x", 16<<10)
	batch := func(from int) []hearth.Message {
		ms := msgs(from, perBatch)
		for i := range ms {
			ms[i].Data = fmt.Appendf(nil, `{"n":%d,"pad":%q}`, from+i, pad)
		}
		return ms
	}
	path := tempPath(t)
	opts := Options{MaxBytes: quota}
	o := mustOpen(t, path, opts)
	ctx := context.Background()
	n := 0
	for {
		_, err := o.Append(ctx, batch(n))
		if errors.Is(err, hearth.ErrFull) {
			break
		}
		if err != nil {
			t.Fatalf("append at %d messages (%d MiB): %v", n, o.Stats().Bytes>>20, err)
		}
		n += perBatch
	}
	s := o.Stats()
	if s.Bytes > quota || s.Bytes < quota-2*sizeOf(batch(0)) {
		t.Fatalf("full at %d bytes, want just under the quota %d", s.Bytes, quota)
	}
	if s.Depth != int64(n) {
		t.Fatalf("depth %d, want %d", s.Depth, n)
	}
	mustClose(t, o)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages, %d MiB of messages, file %d MiB", n, s.Bytes>>20, fi.Size()>>20)

	// Open maps the whole file again; then read and delete it all.
	o = mustOpen(t, path, opts)
	read := 0
	for {
		recs := mustRead(t, o, 1000)
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if !strings.HasPrefix(string(r.Msg.Data), fmt.Sprintf(`{"n":%d,`, read)) {
				t.Fatalf("record %d: data %.20s…", read, r.Msg.Data)
			}
			read++
		}
		if err := o.Delete(seqsOf(recs)...); err != nil {
			t.Fatal(err)
		}
	}
	if read != n || o.Stats().Depth != 0 {
		t.Fatalf("read %d of %d messages, depth %d after draining", read, n, o.Stats().Depth)
	}
	if _, err := o.Append(ctx, batch(n)); err != nil {
		t.Fatalf("append after draining: %v", err)
	}
}
