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
// operator, so it stays small.
type edgeReports struct {
	mu    sync.Mutex
	homes map[string]EdgeReport
	saved map[string]EdgeReport // what was last written to the store, by home
	// unknown: homes whose last batch here had a clock too far off to measure.
	unknown map[string]bool
}

func newEdgeReports() *edgeReports {
	return &edgeReports{homes: map[string]EdgeReport{}, saved: map[string]EdgeReport{}, unknown: map[string]bool{}}
}

// clock keeps whether the home's last batch let its edge's clock be measured.
func (e *edgeReports) clock(home string, known bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if known {
		delete(e.unknown, home)
	} else {
		e.unknown[home] = true
	}
}

// clockUnknown returns the homes whose last batch here had a clock too far
// off to measure.
func (e *edgeReports) clockUnknown() map[string]bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]bool, len(e.unknown))
	for k := range e.unknown {
		out[k] = true
	}
	return out
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
// up in a metric label (the version) and a console.
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
	descHomes = prometheus.NewDesc("hearth_central_homes",
		"Homes whose token is not revoked (GET /fleet on the admin listener lists them by state).", nil, nil)
	descNotSeen = prometheus.NewDesc("hearth_central_edges_not_seen",
		"Homes whose edge was seen once but not for 10 min / 1 h (label for; 10m includes 1h), or never (for=\"ever\"), by any replica.",
		[]string{"for"}, nil)
	descBacklogOldest = prometheus.NewDesc("hearth_central_edge_backlog_oldest_max_seconds",
		"Largest age of the oldest pending message that any edge reported (Hearth-Backlog-Oldest-Seconds).", nil, nil)
	descBacklogMax = prometheus.NewDesc("hearth_central_edge_backlog_max_messages",
		"Largest outbox backlog that any edge reported (Hearth-Backlog-Messages).", nil, nil)
	descBacklogAll = prometheus.NewDesc("hearth_central_edges_backlog_messages",
		"Messages pending in the outboxes of all edges together, as they last reported.", nil, nil)
	descDeadEdges = prometheus.NewDesc("hearth_central_edges_with_dead_letters",
		"Homes whose edge reported dead letters (Hearth-Dead-Letters > 0).", nil, nil)
	descDeadAll = prometheus.NewDesc("hearth_central_edges_dead_letters",
		"Dead letters held by all edges together, as they last reported.", nil, nil)
	descClockOff = prometheus.NewDesc("hearth_central_edges_clock_off",
		"Homes whose edge clock was off by more than clock_tolerance when last measured.", nil, nil)
	descClockUnknown = prometheus.NewDesc("hearth_central_edges_clock_unknown",
		"Homes whose last batch to this replica had a sent_at too far off to measure the edge's clock (its times were taken as central's now).", nil, nil)
	descVersions = prometheus.NewDesc("hearth_central_edge_versions",
		"Edges seen at least once, by the version they report (the 20 most common; the rest as other).", []string{"version"}, nil)
	descFleetErrors = prometheus.NewDesc("hearth_central_fleet_view_errors_total",
		"Times the fleet's state could not be read from the database for these series (the last good view is shown).", nil, nil)
)

// fleetCollector exports the fleet's aggregates (fleetview.go).
type fleetCollector struct{ s *Server }

// Describe implements prometheus.Collector.
func (c fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHomes, descNotSeen, descBacklogOldest, descBacklogMax, descBacklogAll,
		descDeadEdges, descDeadAll, descClockOff, descClockUnknown, descVersions, descFleetErrors} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c fleetCollector) Collect(ch chan<- prometheus.Metric) {
	r, err := c.s.fleet(time.Now())
	if err != nil {
		c.s.fleetErrors.Add(1)
	}
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	g(descHomes, float64(r.Homes))
	g(descNotSeen, float64(len(r.NotSeen10m)), "10m")
	g(descNotSeen, float64(len(r.NotSeen1h)), "1h")
	g(descNotSeen, float64(len(r.NeverSeen)), "ever")
	var oldest, most, all, dead int64
	for _, h := range r.Backlog {
		oldest, most, all = max(oldest, h.BacklogOldestSeconds), max(most, h.BacklogMessages), all+max(h.BacklogMessages, 0)
	}
	for _, h := range r.DeadLetters {
		dead += h.DeadLetters
	}
	g(descBacklogOldest, float64(oldest))
	g(descBacklogMax, float64(most))
	g(descBacklogAll, float64(all))
	g(descDeadEdges, float64(len(r.DeadLetters)))
	g(descDeadAll, float64(dead))
	g(descClockOff, float64(len(r.ClockOff)))
	g(descClockUnknown, float64(len(r.ClockUnknown)))
	for v, n := range r.Versions {
		g(descVersions, float64(n), v)
	}
	ch <- prometheus.MustNewConstMetric(descFleetErrors, prometheus.CounterValue, float64(c.s.fleetErrors.Load()))
}
