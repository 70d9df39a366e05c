package central

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// EdgeReport is what a home's edge last said of itself in the Hearth-*
// headers of its requests (docs/edge-api.md), for a console to show.
type EdgeReport struct {
	EdgeID  string
	Version string
	// BacklogMessages and BacklogOldestSeconds are -1 when the edge did
	// not send them (or sent something that is not a count).
	BacklogMessages      int64
	BacklogOldestSeconds int64
	DeadLetters          int64     // -1 when not sent (Hearth-Dead-Letters is optional)
	Seen                 time.Time // central's clock
}

// State is the report as the store keeps it.
func (r EdgeReport) State() store.EdgeState {
	return store.EdgeState{EdgeID: r.EdgeID, Version: r.Version, BacklogMessages: r.BacklogMessages,
		BacklogOldestSeconds: r.BacklogOldestSeconds, DeadLetters: r.DeadLetters, Seen: r.Seen}
}

// edgeReports keeps the last EdgeReport of each home that authenticated
// since start: one small entry per home, and homes are created by the
// operator, so it stays small. It is also the Prometheus collector of
// the reports.
type edgeReports struct {
	mu    sync.Mutex
	homes map[string]EdgeReport
	saved map[string]EdgeReport // what was last written to the store, by home
	msgs  map[string]*hourly    // messages stored per hour, by home
}

// hourly counts over the last 24 hours, in hourly buckets.
type hourly struct {
	count [24]int64
	hour  [24]int64 // the Unix hour each bucket counts
}

func (h *hourly) add(n int, now time.Time) {
	hr := now.Unix() / 3600
	i := hr % 24
	if h.hour[i] != hr {
		h.hour[i], h.count[i] = hr, 0
	}
	h.count[i] += int64(n)
}

// sum counts the last 24 hours at now.
func (h *hourly) sum(now time.Time) int64 {
	hr := now.Unix() / 3600
	var n int64
	for i := range h.count {
		if hr-h.hour[i] < 24 {
			n += h.count[i]
		}
	}
	return n
}

// stored counts n messages of home stored at now.
func (e *edgeReports) stored(home string, n int, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	h := e.msgs[home]
	if h == nil {
		h = &hourly{}
		e.msgs[home] = h
	}
	h.add(n, now)
}

// MessagesPerDay returns the messages of each home's batches this replica
// stored in the last 24 hours.
func (e *edgeReports) MessagesPerDay(now time.Time) map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int64, len(e.msgs))
	for home, h := range e.msgs {
		out[home] = h.sum(now)
	}
	return out
}

func newEdgeReports() *edgeReports {
	return &edgeReports{homes: map[string]EdgeReport{}, saved: map[string]EdgeReport{}, msgs: map[string]*hourly{}}
}

// saveEvery is how often a home's report is written to the store when
// nothing but its counts changed: last seen (in home list and the console
// of every replica) is then at most this old, and a busy edge costs one
// write a minute, not one per batch.
const saveEvery = time.Minute

// toSave returns the home's report when it should be written to the store
// now (a minute since the last write, or a new edge id or version), and
// takes it as written.
func (e *edgeReports) toSave(home string) (EdgeReport, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, last := e.homes[home], e.saved[home]
	if r.Seen.Sub(last.Seen) < saveEvery && r.EdgeID == last.EdgeID && r.Version == last.Version {
		return r, false
	}
	e.saved[home] = r
	return r, true
}

// unsave forgets a write that failed, so the next request tries again.
func (e *edgeReports) unsave(home string) {
	e.mu.Lock()
	delete(e.saved, home)
	e.mu.Unlock()
}

// maxReportText bounds what is kept of the edge's id and version.
const maxReportText = 64

// record keeps what the headers of an authenticated request of home say.
func (e *edgeReports) record(home string, h *fasthttp.RequestHeader, now time.Time) {
	r := EdgeReport{
		EdgeID:               reportText(h.Peek(hearth.HeaderEdgeID)),
		Version:              reportText(h.Peek(hearth.HeaderEdgeVersion)),
		BacklogMessages:      reportCount(h.Peek(hearth.HeaderBacklogMessages)),
		BacklogOldestSeconds: reportCount(h.Peek(hearth.HeaderBacklogOldestSecs)),
		DeadLetters:          reportCount(h.Peek(hearth.HeaderDeadLetters)),
		Seen:                 now,
	}
	e.mu.Lock()
	e.homes[home] = r
	e.mu.Unlock()
}

// Reports returns a copy of every home's last report, by home id.
func (e *edgeReports) Reports() map[string]EdgeReport {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]EdgeReport, len(e.homes))
	for k, v := range e.homes {
		out[k] = v
	}
	return out
}

// reportText keeps a header as printable UTF-8 of bounded length: it ends
// up in metric labels and a console.
func reportText(b []byte) string {
	s := strings.ToValidUTF8(string(b), "")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > maxReportText {
		s = strings.ToValidUTF8(s[:maxReportText], "")
	}
	return s
}

// reportCount parses a non-negative count header; -1 when absent or not one.
func reportCount(b []byte) int64 {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

var (
	descEdgeInfo = prometheus.NewDesc("hearth_central_edge_info",
		"1 per home whose edge has made an authenticated request since start, labelled with the edge id and version it sent (Hearth-Edge-Id, Hearth-Edge-Version).",
		[]string{"home", "edge_id", "version"}, nil)
	descEdgeBacklog = prometheus.NewDesc("hearth_central_edge_backlog_messages",
		"Messages pending in the edge's outbox, as its last request said (Hearth-Backlog-Messages).",
		[]string{"home"}, nil)
	descEdgeOldest = prometheus.NewDesc("hearth_central_edge_backlog_oldest_seconds",
		"Age of the oldest message pending in the edge's outbox, as its last request said (Hearth-Backlog-Oldest-Seconds).",
		[]string{"home"}, nil)
	descEdgeDead = prometheus.NewDesc("hearth_central_edge_dead_letters",
		"Dead letters the edge holds, as its last request said (Hearth-Dead-Letters; absent when the edge does not send it).",
		[]string{"home"}, nil)
	descEdgeSeen = prometheus.NewDesc("hearth_central_edge_last_request_timestamp_seconds",
		"When central last had an authenticated request from the home's edge (Unix time).",
		[]string{"home"}, nil)
)

// Describe implements prometheus.Collector.
func (e *edgeReports) Describe(ch chan<- *prometheus.Desc) {
	ch <- descEdgeInfo
	ch <- descEdgeBacklog
	ch <- descEdgeOldest
	ch <- descEdgeDead
	ch <- descEdgeSeen
}

// Collect implements prometheus.Collector.
func (e *edgeReports) Collect(ch chan<- prometheus.Metric) {
	for home, r := range e.Reports() {
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			if m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, v, append([]string{home}, labels...)...); err == nil {
				ch <- m
			}
		}
		gauge(descEdgeInfo, 1, r.EdgeID, r.Version)
		if r.BacklogMessages >= 0 {
			gauge(descEdgeBacklog, float64(r.BacklogMessages))
		}
		if r.BacklogOldestSeconds >= 0 {
			gauge(descEdgeOldest, float64(r.BacklogOldestSeconds))
		}
		if r.DeadLetters >= 0 {
			gauge(descEdgeDead, float64(r.DeadLetters))
		}
		gauge(descEdgeSeen, float64(r.Seen.UnixMilli())/1000)
	}
}
