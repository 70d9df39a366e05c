package hearth

import (
	"fmt"
	"testing"
	"time"
)

// timeForm is one way a phone writes a device time.
type timeForm struct {
	name   string
	format func(t time.Time) string
	rfc    bool // RFC 3339 with a zone: ModeStrict accepts it too
}

var (
	zoneIST  = time.FixedZone("", 5*3600+30*60)
	zonePST  = time.FixedZone("", -8*3600)
	zoneLINT = time.FixedZone("", 14*3600)
	zoneBIT  = time.FixedZone("", -12*3600)
)

var timeForms = []timeForm{
	{"Z", func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }, true},
	{"+05:30", func(t time.Time) string { return t.In(zoneIST).Format(time.RFC3339Nano) }, true},
	{"-08:00", func(t time.Time) string { return t.In(zonePST).Format(time.RFC3339Nano) }, true},
	{"+14:00", func(t time.Time) string { return t.In(zoneLINT).Format(time.RFC3339Nano) }, true},
	{"-12:00", func(t time.Time) string { return t.In(zoneBIT).Format(time.RFC3339Nano) }, true},
	{"no zone", func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.999999999") }, false},
	{"+0530", func(t time.Time) string { return t.In(zoneIST).Format("2006-01-02T15:04:05.999999999-0700") }, false},
	{"space", func(t time.Time) string { return t.In(zonePST).Format("2006-01-02 15:04:05.999999999Z07:00") }, false},
}

// referenceClocks are the reference times the window is judged from: an
// ordinary day, a midnight, a leap day, and clocks whose window reaches
// past the absolute bounds.
var referenceClocks = []time.Time{
	testNow,
	time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC),
	time.Date(2024, 2, 29, 23, 59, 30, 0, time.UTC),
	time.Date(2000, 6, 1, 12, 0, 0, 0, time.UTC),
	time.Date(2099, 12, 31, 23, 55, 0, 0, time.UTC),
}

// offsetsAround returns offsets from edge-span to edge+span in steps of
// step, plus a few nanoseconds, seconds and the margin around edge itself.
func offsetsAround(edge, span, step time.Duration) []time.Duration {
	var out []time.Duration
	for d := edge - span; d <= edge+span; d += step {
		out = append(out, d)
	}
	for _, fine := range []time.Duration{-time.Minute - time.Nanosecond, -time.Minute, -time.Minute + time.Nanosecond,
		-time.Second, -time.Nanosecond, 0, time.Nanosecond, time.Second,
		time.Minute - time.Nanosecond, time.Minute, time.Minute + time.Nanosecond} {
		out = append(out, edge+fine)
	}
	return out
}

// Ensure that what the edge accepts with its window (central's less a
// minute at both ends) central accepts in ModeStrict on its canonical form
// at the same reference clock, for device times stepped across both edges
// of the window in every form and zone; and that the edge accepts exactly
// the times inside its window and the absolute bounds.
func TestCheck_EdgeWithinCentral_Timestamps(t *testing.T) {
	ew := edgeWindow(time.Time{})
	var accepted, refused int
	for _, now := range referenceClocks {
		var offsets []time.Duration
		offsets = append(offsets, offsetsAround(-ew.MaxAge, 90*time.Minute, 7*time.Minute+13*time.Second)...)
		offsets = append(offsets, offsetsAround(ew.MaxFuture, 30*time.Minute, 47*time.Second)...)
		for _, d := range offsets {
			ts := now.Add(d)
			if ts.Year() < 1 || ts.Year() > 9999 {
				continue
			}
			for _, form := range timeForms {
				s := quote(form.format(ts))
				for _, m := range bothModes {
					r := Rules{Mode: m}
					want := inWindow(ts, edgeWindow(now)) && (m == ModeSeed || form.rfc)
					for _, in := range []struct {
						kind Kind
						data string
					}{
						{KindLocation, loc(s, "1", "2")},
						{KindSiteAccess, site(s, `"https://example.com"`, "true")},
					} {
						got := checkEdgeInCentral(t, in.kind, []byte(in.data), r, now)
						if got != want {
							t.Fatalf("now %s, %s %s (%s, %s): accepted %v, want %v", now.Format(time.RFC3339), modeName(m), in.kind, form.name, s, got, want)
						}
						if got {
							accepted++
						} else {
							refused++
						}
					}
				}
			}
		}
	}
	if accepted == 0 || refused == 0 {
		t.Fatalf("%d accepted, %d refused: the inputs do not cross the edges", accepted, refused)
	}
	t.Logf("%d accepted, %d refused", accepted, refused)
}

// Ensure the same for screen_time dates, in both date forms, around both
// edges of the window and its day of slack.
func TestCheck_EdgeWithinCentral_Dates(t *testing.T) {
	var accepted, refused int
	for _, now := range referenceClocks {
		today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
		var days []time.Time
		for n := -370; n <= -360; n++ {
			days = append(days, today.AddDate(0, 0, n))
		}
		for n := -3; n <= 3; n++ {
			days = append(days, today.AddDate(0, 0, n))
		}
		for _, day := range days {
			for _, form := range []struct {
				layout string
				strict bool
			}{{DateLayout, true}, {"2006-1-2", false}} {
				s := day.Format(form.layout)
				seedForm := s != day.Format(DateLayout)
				for _, m := range bothModes {
					want := inDayWindow(day, edgeWindow(now)) && (m == ModeSeed || !seedForm)
					got := checkEdgeInCentral(t, KindScreenTime, []byte(screen(quote(s), "60", `{"a":{"1":60}}`)), Rules{Mode: m}, now)
					if got != want {
						t.Fatalf("now %s, %s date %s: accepted %v, want %v", now.Format(time.RFC3339), modeName(m), s, got, want)
					}
					if got {
						accepted++
					} else {
						refused++
					}
				}
			}
		}
	}
	if accepted == 0 || refused == 0 {
		t.Fatalf("%d accepted, %d refused: the inputs do not cross the edges", accepted, refused)
	}
}

// Ensure that the edge's window is inside central's at every reference
// clock, so that the two properties above are no accident of the inputs.
func TestCheck_EdgeWindowInsideCentral(t *testing.T) {
	for _, now := range referenceClocks {
		e, c := edgeWindow(now), centralWindow(now)
		for _, d := range []time.Duration{-c.MaxAge - time.Hour, -c.MaxAge, -e.MaxAge, 0, e.MaxFuture, c.MaxFuture, c.MaxFuture + time.Hour} {
			ts := now.Add(d)
			if inWindow(ts, e) && !inWindow(ts, c) {
				t.Errorf("now %s: %s inside the edge's window, outside central's", now, ts)
			}
		}
		if fmt.Sprint(e.Now) != fmt.Sprint(c.Now) || e.MaxAge >= c.MaxAge || e.MaxFuture >= c.MaxFuture {
			t.Errorf("edge window %+v, central window %+v", e, c)
		}
	}
}

// inWindow is the model of the rule for a device time.
func inWindow(ts time.Time, w Window) bool {
	return !ts.Before(EarliestTime) && ts.Before(LatestTime) &&
		!ts.Before(w.Now.Add(-w.MaxAge)) && !ts.After(w.Now.Add(w.MaxFuture))
}

// inDayWindow is the model of the rule for a date: a day of slack at both
// ends of the relative window.
func inDayWindow(day time.Time, w Window) bool {
	return !day.Before(EarliestTime) && day.Before(LatestTime) &&
		!day.Before(w.Now.Add(-w.MaxAge-24*time.Hour)) && !day.After(w.Now.Add(w.MaxFuture+24*time.Hour))
}
