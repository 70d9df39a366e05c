package outbox

import (
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// Ensure that no damage to the pages of a file crashes or hangs Open, and
// that after Open's full check the outbox either was moved aside or reads
// and writes without error. Without the full check, damage may surface as
// errors from reads and writes, but never as a crash.
func TestOpen_DamagedPages(t *testing.T) {
	src := tempPath(t)
	o := mustOpen(t, src, Options{})
	for i := 0; i < 20; i++ {
		if _, err := o.Append(context.Background(), msgs(i*50, 50)); err != nil {
			t.Fatal(err)
		}
	}
	seqs, err := o.Append(context.Background(), msgs(0, 500))
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Delete(seqs[:300]...); err != nil {
		t.Fatal(err)
	}
	mustClose(t, o)
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	const ps = 4096
	pages := int(usedBytes(t, src)) / ps

	rng := rand.New(rand.NewSource(1))
	trials := 200
	if testing.Short() {
		trials = 60
	}
	counts := map[string]int{}
	for trial := 0; trial < trials; trial++ {
		b := damage(rng, orig, pages, ps)
		path := filepath.Join(t.TempDir(), "outbox.db")
		writeFile(t, path, b)
		full := trial%2 == 0
		opts := Options{CheckMaxBytes: -1}
		if full {
			opts.CheckMaxBytes = 0
		}
		o := mustOpen(t, path, opts)
		if asides, _ := filepath.Glob(path + ".corrupt-*"); len(asides) > 0 {
			counts["moved aside"]++
			continue
		}
		_, rerr := o.ReadOldest(1 << 20)
		_, aerr := o.Append(context.Background(), msgs(0, 10))
		switch {
		case rerr == nil && aerr == nil:
			counts["usable"]++
		case full:
			t.Fatalf("trial %d: after a full check: read %v, append %v", trial, rerr, aerr)
		default:
			counts["errors without full check"]++
		}
		mustClose(t, o)
	}
	t.Log(counts)
}

// damage returns a copy of file with pages past the metas truncated,
// zeroed, filled with noise, replaced by another page, or scribbled on.
func damage(rng *rand.Rand, file []byte, pages, ps int) []byte {
	b := append([]byte(nil), file...)
	pg := 2 + rng.Intn(pages-2)
	page := b[pg*ps : pg*ps+ps]
	switch rng.Intn(5) {
	case 0:
		return b[:pg*ps+rng.Intn(ps)]
	case 1:
		clear(page)
	case 2:
		rng.Read(page)
	case 3:
		q := 2 + rng.Intn(pages-2)
		copy(page, file[q*ps:q*ps+ps])
	default:
		for i := 0; i < 1+rng.Intn(20); i++ {
			b[2*ps+rng.Intn((pages-2)*ps)] = byte(rng.Intn(256))
		}
	}
	return b
}
