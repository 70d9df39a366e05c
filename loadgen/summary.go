package loadgen

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// ErrNothingAcked means phones ran but the server acked none of their messages.
var ErrNothingAcked = errors.New("nothing acked")

// ErrNoIdle means idle WebSockets were asked for and none could be opened.
var ErrNoIdle = errors.New("no idle connection opened")

// maxReasons bounds the distinct reasons one phone keeps; server messages
// may carry values (timestamps) that would otherwise grow the map forever.
const maxReasons = 64

// stats is what one phone (or the idle set) counted; only its goroutine
// touches it until Run merges them.
type stats struct {
	sent, acked, errors       uint64
	refused, lost, reconnects uint64
	resent, unacked, gaveUp   uint64
	reasons                   map[string]uint64
	lat                       Histogram
}

func (s *stats) reason(r string) {
	if s.reasons == nil {
		s.reasons = make(map[string]uint64)
	}
	if _, ok := s.reasons[r]; !ok && len(s.reasons) >= maxReasons {
		r = "other"
	}
	s.reasons[r]++
}

func (s *stats) merge(o *stats) {
	s.sent += o.sent
	s.acked += o.acked
	s.errors += o.errors
	s.refused += o.refused
	s.lost += o.lost
	s.reconnects += o.reconnects
	s.resent += o.resent
	s.unacked += o.unacked
	s.gaveUp += o.gaveUp
	for r, n := range o.reasons {
		if s.reasons == nil {
			s.reasons = make(map[string]uint64)
		}
		s.reasons[r] += n
	}
	s.lat.Merge(&o.lat)
}

// Reason is one cause of errors, refusals or lost connections, with how often it occurred.
type Reason struct {
	Reason string `json:"reason"`
	Count  uint64 `json:"count"`
}

// Summary is the outcome of a run. Latencies are in milliseconds, from
// writing a frame (or request) to reading its ack, over acked messages only.
type Summary struct {
	Mode     Mode   `json:"mode"`
	Mix      Mix    `json:"mix"`
	Phones   int    `json:"phones"`
	Pipeline int    `json:"pipeline"`
	Sent     uint64 `json:"sent"`    // frames or requests written, resends included
	Acked    uint64 `json:"acked"`   // messages acked (each once)
	Errors   uint64 `json:"errors"`  // messages answered with an error
	Refused  uint64 `json:"refused"` // connection attempts that failed or were refused
	Lost     uint64 `json:"lost"`    // connections (or requests) broken while in use
	// Reconnects counts connections re-established after a loss or refusal.
	Reconnects uint64 `json:"reconnects"`
	Resent     uint64 `json:"resent"` // messages written again after a loss
	// Unacked counts messages written but neither acked nor answered with an error.
	Unacked    uint64   `json:"unacked"`
	GaveUp     uint64   `json:"gave_up"` // phones that stopped because they could not connect
	TopErrors  []Reason `json:"top_errors"`
	IdleOpen   int      `json:"idle_open"`
	IdleFailed int      `json:"idle_failed"`
	// IdleDropped counts idle connections the server closed before the end.
	IdleDropped uint64  `json:"idle_dropped"`
	MsgsPerSec  float64 `json:"msgs_per_sec"`
	P50ms       float64 `json:"p50_ms"`
	P90ms       float64 `json:"p90_ms"`
	P99ms       float64 `json:"p99_ms"`
	Maxms       float64 `json:"max_ms"`
	Meanms      float64 `json:"mean_ms"`
	ElapsedSec  float64 `json:"elapsed_s"`

	idle int
	// Latency holds every ack latency sample for callers that want more
	// quantiles; it is not part of the JSON output.
	Latency Histogram `json:"-"`
}

const topReasons = 5

func newSummary(cfg *Config, total *stats, elapsed time.Duration) *Summary {
	s := &Summary{
		Mode: cfg.Mode, Mix: cfg.Mix, Phones: cfg.Phones, Pipeline: cfg.Pipeline,
		Sent: total.sent, Acked: total.acked, Errors: total.errors,
		Refused: total.refused, Lost: total.lost, Reconnects: total.reconnects,
		Resent: total.resent, Unacked: total.unacked, GaveUp: total.gaveUp,
		TopErrors:  top(total.reasons, topReasons),
		ElapsedSec: round(elapsed.Seconds(), 3),
		Latency:    total.lat,
		idle:       cfg.Idle,
	}
	if elapsed > 0 {
		s.MsgsPerSec = round(float64(total.acked)/elapsed.Seconds(), 1)
	}
	ms := func(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }
	s.P50ms, s.P90ms, s.P99ms = ms(s.Latency.Quantile(0.5)), ms(s.Latency.Quantile(0.9)), ms(s.Latency.Quantile(0.99))
	s.Maxms, s.Meanms = ms(s.Latency.Max()), ms(s.Latency.Mean())
	return s
}

func top(reasons map[string]uint64, n int) []Reason {
	out := make([]Reason, 0, len(reasons))
	for r, c := range reasons {
		out = append(out, Reason{r, c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Reason < out[j].Reason
	})
	return out[:min(n, len(out))]
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// Err reports a run that measured nothing: ErrNothingAcked when there were
// phones and none of their messages was acked, ErrNoIdle when idle
// connections were asked for and none opened. Both name the top reason.
func (s *Summary) Err() error {
	why := ""
	if len(s.TopErrors) > 0 {
		why = " (top reason: " + s.TopErrors[0].Reason + ")"
	}
	if s.Phones > 0 && s.Acked == 0 {
		return fmt.Errorf("%w: %d errors, %d refused connections%s", ErrNothingAcked, s.Errors, s.Refused, why)
	}
	if s.idle > 0 && s.IdleOpen == 0 {
		return fmt.Errorf("%w: %d failed%s", ErrNoIdle, s.IdleFailed, why)
	}
	return nil
}

// WriteJSON writes the summary as one JSON object on one line.
func (s *Summary) WriteJSON(w io.Writer) error {
	return json.NewEncoder(w).Encode(s)
}

// WriteText writes the summary for a person to read.
func (s *Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "mode %s  phones %d  pipeline %d  mix %s  elapsed %.3fs\n", s.Mode, s.Phones, s.Pipeline, s.Mix, s.ElapsedSec)
	fmt.Fprintf(&b, "acked      %d  (%.1f msgs/s)\n", s.Acked, s.MsgsPerSec)
	fmt.Fprintf(&b, "latency ms p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  mean %.3f\n", s.P50ms, s.P90ms, s.P99ms, s.Maxms, s.Meanms)
	fmt.Fprintf(&b, "sent %d  errors %d  unacked %d  resent %d\n", s.Sent, s.Errors, s.Unacked, s.Resent)
	fmt.Fprintf(&b, "refused %d  lost %d  reconnects %d  gave up %d\n", s.Refused, s.Lost, s.Reconnects, s.GaveUp)
	if s.idle > 0 {
		fmt.Fprintf(&b, "idle       %d open  %d failed  %d dropped by the server\n", s.IdleOpen, s.IdleFailed, s.IdleDropped)
	}
	for _, r := range s.TopErrors {
		fmt.Fprintf(&b, "  %8d  %s\n", r.Count, r.Reason)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
