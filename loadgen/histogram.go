package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records durations in log-linear buckets, like an HDR histogram:
// values below 256 ns are exact, larger ones fall into 128 buckets per power
// of two, so a quantile is within 0.4% of the exact one. Memory grows with
// the largest value recorded (about 10 KiB up to one second).
//
// The zero value is ready to use. A Histogram is not safe for concurrent
// use: give each goroutine its own and Merge them.
type Histogram struct {
	counts   []uint64
	n        uint64
	sum      float64 // nanoseconds
	min, max time.Duration
}

const (
	subBits  = 8
	subCount = 1 << subBits // exact values, then the buckets of one power of two ×2
	subHalf  = subCount / 2 // buckets per power of two above subCount
)

// bucketOf returns the index of the bucket holding v.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	g := bits.Len64(v) - subBits // ≥ 1: the bucket width is 2^g
	return subCount + (g-1)*subHalf + int(v>>uint(g)) - subHalf
}

// bucketBounds returns the lowest and highest value bucket i holds.
func bucketBounds(i int) (lo, hi uint64) {
	if i < subCount {
		return uint64(i), uint64(i)
	}
	j := i - subCount
	g := uint(j/subHalf + 1)
	lo = uint64(j%subHalf+subHalf) << g
	return lo, lo + (1 << g) - 1
}

// Record adds one sample; a negative d counts as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := bucketOf(uint64(d))
	if i >= len(h.counts) {
		h.counts = append(h.counts, make([]uint64, i+1-len(h.counts))...)
	}
	h.counts[i]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += float64(d)
}

// Merge adds every sample of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if len(o.counts) > len(h.counts) {
		h.counts = append(h.counts, make([]uint64, len(o.counts)-len(h.counts))...)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count returns the number of samples.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest sample, exactly.
func (h *Histogram) Max() time.Duration { return h.max }

// Mean returns the average sample, or 0 without samples.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the sample of rank ceil(q·n) (q in [0,1]) within the
// histogram's precision: the middle of its bucket, kept inside [min, max].
// It returns 0 without samples.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen < rank {
			continue
		}
		lo, hi := bucketBounds(i)
		v := time.Duration(lo + (hi-lo)/2)
		return min(max(v, h.min), h.max)
	}
	panic("BUG: histogram counts do not add up to n")
}
