package console

import (
	"fmt"
	"time"
)

// ago says how long before now t was, in words: "never", "12s ago", "3h ago".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// countText is a reported count, "-" when never reported (-1).
func countText(n int64) string {
	if n < 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

// secondsText is a duration in seconds in words ("1h2m3s"), "-" when unknown.
func secondsText(n int64) string {
	if n < 0 {
		return "-"
	}
	return (time.Duration(n) * time.Second).String()
}

// offsetText is a clock offset, "-" for a home never seen.
func offsetText(d time.Duration, seen time.Time) string {
	if seen.IsZero() {
		return "-"
	}
	return fmt.Sprintf("%+.1fs", d.Seconds())
}

// shortHash is the start of a child hash, for narrow tables.
func shortHash(h string) string {
	if len(h) > 12 {
		return h[:10] + "…"
	}
	return h
}

// utcText is t in UTC to the second, "-" when zero.
func utcText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// minutesText is seconds of screen time in words: "1h 05m", "12m", "40s".
func minutesText(secs int64) string {
	d := time.Duration(secs) * time.Second
	switch {
	case d >= time.Hour:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	}
	return fmt.Sprintf("%ds", secs)
}
