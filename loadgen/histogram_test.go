package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// Ensure that every value falls in a bucket whose bounds hold it and that
// the buckets tile the number line without gaps.
func TestHistogram_BucketBounds(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := []uint64{0, 1, 255, 256, 257, 511, 512, 1000, 1 << 20, 1<<20 - 1, 1<<63 - 1, math.MaxUint64}
	for range 10000 {
		vals = append(vals, r.Uint64()>>r.IntN(64))
	}
	for _, v := range vals {
		i := bucketOf(v)
		lo, hi := bucketBounds(i)
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d [%d, %d]", v, i, lo, hi)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d bounds [%d, %d] map to %d, %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if hi != math.MaxUint64 && bucketOf(hi+1) != i+1 {
			t.Fatalf("value after bucket %d is in bucket %d", i, bucketOf(hi+1))
		}
		if lo >= subCount && float64(hi-lo)/float64(lo) > 1.0/128 {
			t.Fatalf("bucket %d [%d, %d] wider than 1/128", i, lo, hi)
		}
	}
}

// Ensure that small values are exact.
func TestHistogram_Quantile_Exact(t *testing.T) {
	var h Histogram
	for v := 100; v >= 1; v-- {
		h.Record(time.Duration(v))
	}
	for q, want := range map[float64]time.Duration{0: 1, 0.01: 1, 0.5: 50, 0.99: 99, 0.995: 100, 1: 100} {
		if got := h.Quantile(q); got != want {
			t.Errorf("Quantile(%v) = %v, want %v", q, got, want)
		}
	}
	if h.Count() != 100 || h.Max() != 100 || h.Mean() != 50 {
		t.Errorf("count %d max %v mean %v, want 100 100ns 50ns", h.Count(), h.Max(), h.Mean())
	}
}

// Ensure that quantiles of a wide spread of latencies match the exact
// ranks of the sorted samples within the histogram's precision.
func TestHistogram_Quantile_MatchesSorted(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var h Histogram
	samples := make([]time.Duration, 20000)
	for i := range samples {
		// log-uniform between 1 µs and 1 s
		samples[i] = time.Duration(math.Exp(math.Log(1e3) + r.Float64()*(math.Log(1e9)-math.Log(1e3))))
		h.Record(samples[i])
	}
	slices.Sort(samples)
	for _, q := range []float64{0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 1} {
		exact := samples[int(math.Ceil(q*float64(len(samples))))-1]
		got := h.Quantile(q)
		if rel := math.Abs(float64(got-exact)) / float64(exact); rel > 1.0/256 {
			t.Errorf("Quantile(%v) = %v, exact %v: off by %.4f", q, got, exact, rel)
		}
	}
	if h.Max() != samples[len(samples)-1] {
		t.Errorf("Max = %v, want %v", h.Max(), samples[len(samples)-1])
	}
}

// Ensure that merging histograms gives the histogram of all samples.
func TestHistogram_Merge(t *testing.T) {
	var whole, a, b, empty Histogram
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i*i) * time.Microsecond
		whole.Record(d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&empty)
	m.Merge(&b)
	for _, q := range []float64{0, 0.5, 0.99, 1} {
		if m.Quantile(q) != whole.Quantile(q) {
			t.Errorf("merged Quantile(%v) = %v, want %v", q, m.Quantile(q), whole.Quantile(q))
		}
	}
	if m.Count() != whole.Count() || m.Max() != whole.Max() || m.Mean() != whole.Mean() {
		t.Errorf("merged count/max/mean %d/%v/%v, want %d/%v/%v", m.Count(), m.Max(), m.Mean(), whole.Count(), whole.Max(), whole.Mean())
	}
}

// Ensure that an empty histogram reports zeros.
func TestHistogram_Empty(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Mean() != 0 || h.Count() != 0 {
		t.Fatal("empty histogram reports a sample")
	}
}
