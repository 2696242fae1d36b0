package ui

import (
	"fmt"
	"html"
	"html/template"
	"strings"
	"time"
)

// Charts are drawn here as inline SVG: no script, no chart library, no
// CDN, readable without JavaScript and printable. Each chart is an image
// with a title and a description for screen readers, and the page gives
// the same figures as a table beside it.

const (
	chartWidth = 480
	barRow     = 26
	labelWidth = 170
	barMax     = 240
)

// barChart draws horizontal bars, one per category.
func barChart(id, title string, bars []categoryCount) template.HTML {
	var max int64
	for _, b := range bars {
		max = maxInt64(max, b.N)
	}
	height := len(bars)*barRow + 8
	var s strings.Builder
	fmt.Fprintf(&s, `<svg class="chart" id="%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-labelledby="%s-t">`,
		id, chartWidth, height, chartWidth, height, id)
	fmt.Fprintf(&s, `<title id="%s-t">%s</title>`, id, html.EscapeString(title))
	for i, b := range bars {
		y := 4 + i*barRow
		w := 0
		if max > 0 {
			w = int(float64(barMax) * float64(b.N) / float64(max))
		}
		if b.N > 0 && w < 2 {
			w = 2
		}
		fmt.Fprintf(&s, `<text x="%d" y="%d" class="chart-label" text-anchor="end">%s</text>`,
			labelWidth-10, y+17, html.EscapeString(shorten(b.Label, 24)))
		fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%d" height="%d" rx="3" class="chart-bar%s"><title>%s</title></rect>`,
			labelWidth, y+4, w, barRow-10, otherClass(b.ID), html.EscapeString(T("chart.bar.tip", b.Label, formatInt(b.N))))
		fmt.Fprintf(&s, `<text x="%d" y="%d" class="chart-value">%s</text>`, labelWidth+w+8, y+17, formatInt(b.N))
	}
	s.WriteString(`</svg>`)
	return template.HTML(s.String())
}

func otherClass(id string) string {
	if id == "" {
		return " chart-bar-other"
	}
	return ""
}

// hourChart draws one column per hour of the last 24.
func hourChart(id, title string, hourly [24]int64, from time.Time) template.HTML {
	hour := func(i int) int { return from.Add(time.Duration(i) * time.Hour).In(paris).Hour() }
	return columnChart(id, title, hourly[:],
		func(i int, v int64) string { return T("chart.hour.tip", hour(i), formatInt(v)) },
		func(i int) string {
			if hour(i)%3 == 0 {
				return T("chart.hour.label", hour(i))
			}
			return ""
		})
}

// dayChart draws one column per day from from (Paris days).
func dayChart(id, title string, daily []int64, from time.Time) template.HTML {
	day := func(i int) time.Time { return from.In(paris).AddDate(0, 0, i) }
	every := 1
	if len(daily) > 10 {
		every = 5
	}
	return columnChart(id, title, daily,
		func(i int, v int64) string { return T("chart.day.tip", day(i).Format("02/01"), formatInt(v)) },
		func(i int) string {
			if (len(daily)-1-i)%every == 0 {
				return day(i).Format("02/01")
			}
			return ""
		})
}

// columnChart draws one column per value, each with its tooltip, and an
// axis label under the columns label returns one for.
func columnChart(id, title string, vals []int64, tip func(int, int64) string, label func(int) string) template.HTML {
	const (
		height = 170
		top    = 12
		bottom = 28
		left   = 44
		plotH  = height - top - bottom
	)
	var max int64
	for _, v := range vals {
		max = maxInt64(max, v)
	}
	scale := niceCeil(max)
	colW := float64(chartWidth-left-8) / float64(len(vals))
	var s strings.Builder
	fmt.Fprintf(&s, `<svg class="chart" id="%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-labelledby="%s-t">`,
		id, chartWidth, height, chartWidth, height, id)
	fmt.Fprintf(&s, `<title id="%s-t">%s</title>`, id, html.EscapeString(title))
	// Grid lines at 0, half and full scale, labelled.
	for _, f := range []int64{0, scale / 2, scale} {
		y := top + plotH - int(float64(plotH)*float64(f)/float64(scale))
		fmt.Fprintf(&s, `<line x1="%d" x2="%d" y1="%d" y2="%d" class="chart-grid"/>`, left, chartWidth-8, y, y)
		fmt.Fprintf(&s, `<text x="%d" y="%d" class="chart-axis" text-anchor="end">%s</text>`, left-6, y+4, formatInt(f))
	}
	for i, v := range vals {
		x := float64(left) + float64(i)*colW
		hgt := int(float64(plotH) * float64(v) / float64(scale))
		if v > 0 && hgt < 2 {
			hgt = 2
		}
		fmt.Fprintf(&s, `<rect x="%.1f" y="%d" width="%.1f" height="%d" rx="2" class="chart-col"><title>%s</title></rect>`,
			x+2, top+plotH-hgt, colW-4, hgt, html.EscapeString(tip(i, v)))
		if l := label(i); l != "" {
			fmt.Fprintf(&s, `<text x="%.1f" y="%d" class="chart-axis" text-anchor="middle">%s</text>`,
				x+colW/2, height-8, html.EscapeString(l))
		}
	}
	s.WriteString(`</svg>`)
	return template.HTML(s.String())
}

// shareBar draws blocked against allowed as one horizontal bar; the
// sentence beside it says the figures (the bar is decoration for eyes).
func shareBar(blocked, allowed int64) template.HTML {
	all := blocked + allowed
	if all == 0 {
		return ""
	}
	w := 100 * float64(blocked) / float64(all)
	if blocked > 0 && w < 1 {
		w = 1
	}
	return template.HTML(fmt.Sprintf(`<svg class="share" viewBox="0 0 100 6" preserveAspectRatio="none" width="100%%" height="12" aria-hidden="true" focusable="false">`+
		`<rect x="0" y="0" width="100" height="6" class="share-allowed"/><rect x="0" y="0" width="%.1f" height="6" class="share-blocked"/></svg>`, w))
}

// niceCeil rounds a maximum up to 1, 2 or 5 times a power of ten, so that
// the axis reads in round numbers.
func niceCeil(v int64) int64 {
	if v <= 1 {
		return 1
	}
	p := int64(1)
	for p*10 <= v {
		p *= 10
	}
	for _, m := range []int64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func maxInt64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
