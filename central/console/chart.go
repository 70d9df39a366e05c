package console

import (
	"fmt"
	"html/template"
	"strings"
)

// Bar is one bar of a chart: its label and value, and the value as text.
type Bar struct {
	Label string
	Value float64
	Text  string
}

// Chart geometry, in SVG user units; the SVG scales to its container.
const (
	chartW      = 480 // narrow, so that text stays readable when a phone scales it down
	columnH     = 160
	columnPad   = 22 // room for the value above and the label below
	rowH        = 24
	rowLabelW   = 170
	rowValueW   = 70
	chartFontPx = 12
)

// ColumnChart draws bars as columns, left to right (screen time per day).
// Labels and texts are escaped: they come from phones.
func ColumnChart(title string, bars []Bar) template.HTML {
	var b strings.Builder
	h := columnH + 2*columnPad
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s">`, chartW, h, esc(title))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(title))
	if len(bars) == 0 {
		return template.HTML(b.String() + noData(h) + `</svg>`)
	}
	top := maxValue(bars)
	slot := float64(chartW) / float64(len(bars))
	for i, bar := range bars {
		bh := scale(bar.Value, top, columnH)
		x := float64(i)*slot + slot*0.15
		y := float64(columnPad + columnH - bh)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%d"><title>%s: %s</title></rect>`,
			x, y, slot*0.7, bh, esc(bar.Label), esc(bar.Text))
		cx := float64(i)*slot + slot/2
		if bar.Value > 0 && len(bars) <= 16 { // an empty day needs no "0"; many columns no values
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="%d">%s</text>`, cx, y-4, chartFontPx-2, esc(bar.Text))
		}
		if (len(bars)-1-i)%labelEvery(len(bars)) == 0 { // the last (today) always
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="%d">%s</text>`, cx, h-6, chartFontPx-2, esc(bar.Label))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// RowChart draws bars as rows, top to bottom (screen time per app).
func RowChart(title string, bars []Bar) template.HTML {
	var b strings.Builder
	h := max(len(bars), 1)*rowH + 4
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s">`, chartW, h, esc(title))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(title))
	if len(bars) == 0 {
		return template.HTML(b.String() + noData(h) + `</svg>`)
	}
	top := maxValue(bars)
	for i, bar := range bars {
		y := i*rowH + 2
		w := scale(bar.Value, top, chartW-rowLabelW-rowValueW)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" font-size="%d">%s</text>`, rowLabelW-6, y+15, chartFontPx, esc(clipLabel(bar.Label)))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d"><title>%s: %s</title></rect>`, rowLabelW, y+3, w, rowH-6, esc(bar.Label), esc(bar.Text))
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="%d">%s</text>`, rowLabelW+w+6, y+15, chartFontPx, esc(bar.Text))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// labelEvery is how many columns share one label, so labels do not overlap.
func labelEvery(n int) int {
	return max(1, (n+6)/7)
}

func noData(h int) string {
	return fmt.Sprintf(`<text x="%d" y="%d" text-anchor="middle" font-size="14">no data in this period</text>`, chartW/2, h/2)
}

func maxValue(bars []Bar) float64 {
	top := 0.0
	for _, b := range bars {
		top = max(top, b.Value)
	}
	return top
}

// scale maps v in [0, top] to [0, size]; a non-zero value gets at least 1.
func scale(v, top float64, size int) int {
	if top <= 0 || v <= 0 {
		return 0
	}
	return max(1, int(v/top*float64(size)+0.5))
}

// clipLabel keeps a row label to what fits beside its bar.
func clipLabel(s string) string {
	r := []rune(s)
	if len(r) > 24 {
		return string(r[:23]) + "…"
	}
	return s
}

func esc(s string) string { return template.HTMLEscapeString(s) }
