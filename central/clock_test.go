package central

import (
	"testing"
	"time"
)

var t0 = time.Date(2025, 12, 10, 12, 0, 0, 0, time.UTC)

// Ensure that only an offset beyond the tolerance shifts an edge's times,
// and that an offset too large to represent is unknown, not an overflow.
func TestMeasureEdgeClock(t *testing.T) {
	for _, tc := range []struct {
		sent  time.Time
		shift time.Duration
		known bool
	}{
		{t0, 0, true},
		{t0.Add(5 * time.Second), 0, true},
		{t0.Add(-5 * time.Second), 0, true},
		{t0.Add(5*time.Second + time.Millisecond), 5*time.Second + time.Millisecond, true},
		{t0.Add(time.Hour), time.Hour, true},
		{t0.Add(-time.Hour), -time.Hour, true},
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).Sub(t0), true},
		{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), 0, false},
		{time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), 0, false},
	} {
		c := MeasureEdgeClock(tc.sent, t0, 5*time.Second)
		if c.Known != tc.known || (c.Known && c.shift() != tc.shift) {
			t.Errorf("sent %s: known %v shift %s, want %v %s", tc.sent, c.Known, c.shift(), tc.known, tc.shift)
		}
	}
}

// Ensure that received_at moves to central's clock and never lands in
// central's future, nor before any plausible time.
func TestEdgeClock_ReceivedAt(t *testing.T) {
	const tol = 5 * time.Second
	clock := func(sent time.Time) EdgeClock { return MeasureEdgeClock(sent, t0, tol) }
	boot1970 := time.Date(1970, 1, 1, 0, 0, 5, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		clock  EdgeClock
		recv   time.Time
		synced bool
		want   time.Time
	}{
		{"no shift", clock(t0), t0.Add(-time.Minute), false, t0.Add(-time.Minute)},
		{"edge an hour ahead", clock(t0.Add(time.Hour)), t0.Add(50 * time.Minute), false, t0.Add(-10 * time.Minute)},
		{"edge an hour behind", clock(t0.Add(-time.Hour)), t0.Add(-70 * time.Minute), false, t0.Add(-10 * time.Minute)},
		{"edge booted in 1970", clock(boot1970), time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), false, t0.Add(-5 * time.Second)},
		{"within tolerance ahead", clock(t0), t0.Add(4 * time.Second), false, t0.Add(4 * time.Second)},
		{"far ahead without shift", clock(t0), t0.Add(time.Hour), false, t0},
		{"ahead after shift (clock stepped back)", clock(t0.Add(time.Minute)), t0.Add(time.Hour), false, t0},
		{"synced is not shifted", clock(t0.Add(90 * 24 * time.Hour)), t0.Add(-time.Hour), true, t0.Add(-time.Hour)},
		{"synced ahead of now", clock(t0), t0.Add(time.Hour), true, t0},
		{"offset unknown (sent in year 1)", clock(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), false, t0},
		{"offset unknown (sent in 9999)", clock(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)), t0.Add(-time.Hour), false, t0},
		{"before 2000 after the shift", clock(t0), time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), false, t0},
	} {
		if got := tc.clock.ReceivedAt(tc.recv, tc.synced); !got.Equal(tc.want) {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
