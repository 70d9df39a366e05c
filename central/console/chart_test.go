package console

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var rectHeight = regexp.MustCompile(`<rect [^>]*height="(\d+)"`)

// Ensure that columns are scaled to the largest value, a non-zero value
// stays visible, and labels from phones are escaped.
func TestColumnChart(t *testing.T) {
	svg := string(ColumnChart("t", []Bar{{"a", 100, "100"}, {"b", 50, "50"}, {"c", 0.01, "tiny"}, {"<x>", 0, "0"}}))
	var hs []int
	for _, m := range rectHeight.FindAllStringSubmatch(svg, -1) {
		n, _ := strconv.Atoi(m[1])
		hs = append(hs, n)
	}
	if len(hs) != 4 || hs[0] != columnH || hs[1] != columnH/2 || hs[2] != 1 || hs[3] != 0 {
		t.Fatalf("heights %v, want [%d %d 1 0]", hs, columnH, columnH/2)
	}
	if strings.Contains(svg, "<x>") || !strings.Contains(svg, "&lt;x&gt;") {
		t.Fatalf("label not escaped: %s", svg)
	}
}

// Ensure that an empty chart says so instead of drawing nothing.
func TestRowChart_Empty(t *testing.T) {
	if svg := string(RowChart("t", nil)); !strings.Contains(svg, "no data") {
		t.Fatalf("empty chart: %s", svg)
	}
}

// Ensure that screen time is summed per app and per day, with a zero bar
// for a day without data.
func TestScreenBars(t *testing.T) {
	now := mustDay(t, "2025-12-10")
	days := []dayData{{"2025-12-09", 600, map[string]map[int]int64{"x": {1: 300, 2: 100}, "y": {3: 200}}},
		{"2025-12-10", 60, map[string]map[int]int64{"y": {4: 60}}}}
	perDay, perApp, total := screenBars(toDays(days), now)
	if len(perDay) != screenDays || perDay[screenDays-1].Value != 60 || perDay[screenDays-2].Value != 600 || perDay[0].Value != 0 {
		t.Fatalf("per day: %+v", perDay)
	}
	if len(perApp) != 2 || perApp[0].Label != "x" || perApp[0].Value != 400 || perApp[1].Value != 260 || total != 660 {
		t.Fatalf("per app %+v, total %d", perApp, total)
	}
}
