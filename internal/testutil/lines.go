package testutil

import "strings"

// GrepLines returns the lines of s that contain sub, joined by newlines:
// what a test shows of a long text (a /metrics page, a log) when it fails.
func GrepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
