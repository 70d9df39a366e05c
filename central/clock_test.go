package central

import (
	"testing"
	"time"
)

var t0 = time.Date(2025, 12, 10, 12, 0, 0, 0, time.UTC)

// Ensure that only an offset beyond the tolerance shifts an edge's times.
func TestClockShift(t *testing.T) {
	for _, tc := range []struct {
		sent time.Time
		want time.Duration
	}{
		{t0, 0},
		{t0.Add(5 * time.Second), 0},
		{t0.Add(-5 * time.Second), 0},
		{t0.Add(5*time.Second + time.Millisecond), 5*time.Second + time.Millisecond},
		{t0.Add(time.Hour), time.Hour},
		{t0.Add(-time.Hour), -time.Hour},
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).Sub(t0)},
	} {
		if got := ClockShift(tc.sent, t0, 5*time.Second); got != tc.want {
			t.Errorf("sent %s: shift %s, want %s", tc.sent, got, tc.want)
		}
	}
}

// Ensure that received_at moves to central's clock and never lands in
// central's future.
func TestCorrectReceivedAt(t *testing.T) {
	const tol = 5 * time.Second
	for _, tc := range []struct {
		name  string
		recv  time.Time
		shift time.Duration
		want  time.Time
	}{
		{"no shift", t0.Add(-time.Minute), 0, t0.Add(-time.Minute)},
		{"edge an hour ahead", t0.Add(50 * time.Minute), time.Hour, t0.Add(-10 * time.Minute)},
		{"edge an hour behind", t0.Add(-70 * time.Minute), -time.Hour, t0.Add(-10 * time.Minute)},
		{"edge booted in 1970", time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1970, 1, 1, 0, 0, 5, 0, time.UTC).Sub(t0), t0.Add(-5 * time.Second)},
		{"within tolerance ahead", t0.Add(4 * time.Second), 0, t0.Add(4 * time.Second)},
		{"far ahead without shift", t0.Add(time.Hour), 0, t0},
		{"ahead after shift (clock stepped back)", t0.Add(time.Hour), time.Minute, t0},
	} {
		if got := CorrectReceivedAt(tc.recv, tc.shift, t0, tol); !got.Equal(tc.want) {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
