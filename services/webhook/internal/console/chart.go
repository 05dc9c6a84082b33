package console

import (
	"fmt"
	"html"
	"html/template"
	"strings"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
)

// kindColors are the chart's colors of the record kinds, in clarity.Kinds
// order.
var kindColors = [...]string{"#2d6cdf", "#e08a1e", "#2f9e5b", "#9b59b6"}

// Chart geometry.
const (
	chartW, chartH = 500, 200
	chartLeft      = 56
	chartBottom    = 28
	chartTop       = 12
	maxBar         = 40.0
)

// kindLabel is a record kind as the pages name it.
func kindLabel(kind string) string { return strings.ReplaceAll(kind, "_", " ") }

// runsChart draws the records changed per kind (stacked bars) of each run,
// oldest on the left, as an inline SVG. runs are newest first.
func runsChart(runs []Run) template.HTML {
	if len(runs) == 0 {
		return ""
	}
	var max int64 = 1
	for _, r := range runs {
		var sum int64
		for _, k := range clarity.Kinds {
			sum += r.Changes[k]
		}
		max = maxInt(max, sum)
	}
	var b strings.Builder
	svgOpen(&b, "Records changed per kind in each of the last runs")
	axis(&b, float64(max), compact)
	slot := float64(chartW-chartLeft-8) / float64(len(runs))
	bw := min(slot*0.7, maxBar)
	for i := range runs {
		r := runs[len(runs)-1-i]
		x := float64(chartLeft) + float64(i)*slot + (slot-bw)/2
		y := float64(chartH - chartBottom)
		for j, k := range clarity.Kinds {
			h := float64(r.Changes[k]) / float64(max) * float64(chartH-chartBottom-chartTop)
			if h <= 0 {
				continue
			}
			y -= h
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %d %s</title></rect>`,
				x, y, bw, h, kindColors[j], html.EscapeString(runLabel(r)), r.Changes[k], html.EscapeString(kindLabel(k)))
		}
		if r.Result == clarity.OpFailed {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="fail" text-anchor="middle">✗</text>`, x+bw/2, chartH-chartBottom-2)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%d</text>`, x+bw/2, chartH-chartBottom+14, i+1)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // numbers and escaped text only
}

// durationChart draws each run's duration in seconds as bars, oldest on the
// left.
func durationChart(runs []Run) template.HTML {
	if len(runs) == 0 {
		return ""
	}
	max := 0.001
	for _, r := range runs {
		max = maxFloat(max, r.Duration(r.Finished).Seconds())
	}
	var b strings.Builder
	svgOpen(&b, "Duration of each of the last runs, in seconds")
	axis(&b, max, func(v float64) string { return roundDuration(time.Duration(v * float64(time.Second))) })
	slot := float64(chartW-chartLeft-8) / float64(len(runs))
	bw := min(slot*0.7, maxBar)
	for i := range runs {
		r := runs[len(runs)-1-i]
		d := r.Duration(r.Finished).Seconds()
		h := d / max * float64(chartH-chartBottom-chartTop)
		x := float64(chartLeft) + float64(i)*slot + (slot-bw)/2
		color := "#5b6b7f"
		if r.Result == clarity.OpFailed {
			color = "#c0392b"
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`,
			x, float64(chartH-chartBottom)-h, bw, h, color, html.EscapeString(runLabel(r)), html.EscapeString(roundDuration(r.Duration(r.Finished))))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%d</text>`, x+bw/2, chartH-chartBottom+14, i+1)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // numbers and escaped text only
}

func svgOpen(b *strings.Builder, title string) {
	fmt.Fprintf(b, `<svg class="chart" role="img" viewBox="0 0 %d %d" width="%d" height="%d" xmlns="http://www.w3.org/2000/svg"><title>%s</title>`,
		chartW, chartH, chartW, chartH, html.EscapeString(title))
}

// axis draws the value axis from 0 to max with three grid lines, each
// labelled by label.
func axis(b *strings.Builder, max float64, label func(float64) string) {
	inner := float64(chartH - chartBottom - chartTop)
	for i := 0; i <= 2; i++ {
		v := max * float64(i) / 2
		y := float64(chartH-chartBottom) - inner*float64(i)/2
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" class="grid"/>`, chartLeft, y, chartW-4, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, chartLeft-6, y+4, html.EscapeString(label(v)))
	}
}

func runLabel(r Run) string {
	if r.Started.IsZero() {
		return r.RunID
	}
	return r.Started.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

// compact writes a value in at most a few characters: 1.2k, 35, 0.4.
func compact(v float64) string {
	switch {
	case v >= 10_000:
		return fmt.Sprintf("%.0fk", v/1000)
	case v >= 1000:
		return fmt.Sprintf("%.1fk", v/1000)
	case v >= 10 || v == 0:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func roundDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func maxInt(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func maxFloat(a, b float64) float64 {
	if a > b {
		return a
	}
	return b
}
