package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/guardianai/hearth/outbox"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/valyala/fasthttp"
)

// The dead letters are acted on over the admin listener, by `hearthd
// deadletters` (cmd/hearthd) and nothing else:
//
//	GET  /deadletters?reason=&child=&older_than=&limit=   list (JSON)
//	POST /deadletters/retry?…                             put back in the queue
//	POST /deadletters/purge?…[&all=1]                     delete
//
// The admin listener is on loopback by default; it has no token. So that
// neither another host (admin_listen opened for scraping) nor a web page
// in a browser on this box (a cross-site POST) can change anything, a
// retry or purge must come from a loopback address and carry the header
// AdminHeader, which a browser does not send across sites without asking.
const (
	PathDeadLetters      = "/deadletters"
	PathDeadLettersRetry = "/deadletters/retry"
	PathDeadLettersPurge = "/deadletters/purge"
	// AdminHeader must be on every retry and purge request.
	AdminHeader = "Hearth-Admin"
)

// Results of hearth_admin_deadletters_requests_total: ok, or why refused.
const (
	adminOK          = "ok"
	adminMethod      = "method"       // 405: a GET to retry or purge, or a POST to list
	adminNoHeader    = "no_header"    // 403: retry or purge without AdminHeader
	adminNotLoopback = "not_loopback" // 403: retry or purge from another host
	adminBadFilter   = "bad_filter"   // 400: a filter that does not parse
	adminNoFilter    = "no_filter"    // 400: purge without a filter or all=1
	adminFull        = "full"         // 507: retry the quota has no room for
	adminError       = "error"        // 500: the outbox failed
)

// DeadLetterView is one dead letter as the admin API lists it.
type DeadLetterView struct {
	Seq        uint64    `json:"seq"`
	Code       string    `json:"code"`
	Reason     string    `json:"reason"`
	Child      string    `json:"child"` // shortened
	Type       string    `json:"type"`
	ReceivedAt time.Time `json:"received_at"`
	DeadAt     time.Time `json:"dead_at"`
	Size       int64     `json:"size"`
}

// DeadLettersReply is the JSON of every dead-letter request.
type DeadLettersReply struct {
	DeadLetters []DeadLetterView `json:"dead_letters,omitempty"` // list
	Retried     int              `json:"retried,omitempty"`
	Skipped     int              `json:"skipped,omitempty"` // undecodable: cannot be sent again
	Purged      int              `json:"purged,omitempty"`
	Error       string           `json:"error,omitempty"`
}

// deadLetterAPI holds the admin API's counters and the cache of counts
// by reason.
type deadLetterAPI struct {
	requests *prometheus.CounterVec
	mu       sync.Mutex
	counts   map[string]int64
	countsAt uint64 // the outbox's commits when counted
}

func (d *Daemon) newDeadLetterAPI() {
	d.deadAPI = &deadLetterAPI{requests: promauto.With(d.reg).NewCounterVec(prometheus.CounterOpts{
		Name: "hearth_admin_deadletters_requests_total",
		Help: "Dead-letter requests on the admin listener (hearthd deadletters) by action and result: ok or why refused (method, no_header, not_loopback, bad_filter, no_filter, full, error).",
	}, []string{"action", "result"})}
	d.reg.MustRegister(deadByReason{d})
}

// serveDeadLetters answers the three dead-letter paths.
func (d *Daemon) serveDeadLetters(ctx *fasthttp.RequestCtx) {
	action := map[string]string{PathDeadLetters: "list", PathDeadLettersRetry: "retry", PathDeadLettersPurge: "purge"}[string(ctx.Path())]
	result, status, reply := d.deadLetterRequest(ctx, action)
	d.deadAPI.requests.WithLabelValues(action, result).Inc()
	ctx.SetContentType("application/json")
	ctx.SetStatusCode(status)
	b, _ := json.Marshal(reply)
	ctx.SetBody(append(b, '\n'))
}

func (d *Daemon) deadLetterRequest(ctx *fasthttp.RequestCtx, action string) (string, int, DeadLettersReply) {
	refuse := func(result string, status int, format string, args ...any) (string, int, DeadLettersReply) {
		return result, status, DeadLettersReply{Error: fmt.Sprintf(format, args...)}
	}
	wantPost := action != "list"
	if ctx.IsPost() != wantPost || !ctx.IsPost() && !ctx.IsGet() {
		ctx.Response.Header.Set("Allow", map[bool]string{true: "POST", false: "GET"}[wantPost])
		return refuse(adminMethod, fasthttp.StatusMethodNotAllowed, "method not allowed: %s %s", map[bool]string{true: "POST", false: "GET"}[wantPost], ctx.Path())
	}
	if wantPost && !loopbackAddr(ctx.RemoteAddr()) {
		return refuse(adminNotLoopback, fasthttp.StatusForbidden, "dead letters are retried or purged only from this machine (loopback), not from %s", ctx.RemoteIP())
	}
	if wantPost && len(ctx.Request.Header.Peek(AdminHeader)) == 0 {
		return refuse(adminNoHeader, fasthttp.StatusForbidden, "missing header %s: use hearthd deadletters", AdminHeader)
	}
	f, all, err := parseDeadFilter(ctx.QueryArgs(), time.Now())
	if err != nil {
		return refuse(adminBadFilter, fasthttp.StatusBadRequest, "%v", err)
	}
	bg := context.Background()
	switch action {
	case "retry":
		res, err := d.outbox.RetryDeadLetters(bg, f)
		reply := DeadLettersReply{Retried: res.Retried, Skipped: res.Skipped}
		if errors.Is(err, outbox.ErrRetryFull) {
			reply.Error = err.Error()
			return adminFull, fasthttp.StatusInsufficientStorage, reply
		}
		if err != nil {
			return refuse(adminError, fasthttp.StatusInternalServerError, "retry: %v", err)
		}
		d.log.Info("dead letters put back in the queue", "retried", res.Retried, "skipped_undecodable", res.Skipped, "filter", f)
		return adminOK, fasthttp.StatusOK, reply
	case "purge":
		n, err := d.outbox.PurgeDeadLetters(bg, f, all)
		if errors.Is(err, outbox.ErrPurgeNeedsFilter) {
			return refuse(adminNoFilter, fasthttp.StatusBadRequest, "%v", err)
		}
		if err != nil {
			return refuse(adminError, fasthttp.StatusInternalServerError, "purge: %v", err)
		}
		d.log.Info("dead letters purged", "purged", n, "filter", f, "all", all)
		return adminOK, fasthttp.StatusOK, DeadLettersReply{Purged: n}
	}
	list, err := d.outbox.ListDeadLetters(f)
	if err != nil {
		return refuse(adminError, fasthttp.StatusInternalServerError, "list: %v", err)
	}
	reply := DeadLettersReply{DeadLetters: make([]DeadLetterView, 0, len(list))}
	for _, dl := range list {
		reply.DeadLetters = append(reply.DeadLetters, DeadLetterView{Seq: dl.Seq, Code: dl.Code, Reason: dl.Reason,
			Child: ShortChild(dl.Msg.ChildHash), Type: string(dl.Msg.Kind), ReceivedAt: dl.Msg.ReceivedAt, DeadAt: dl.At, Size: dl.Size})
	}
	return adminOK, fasthttp.StatusOK, reply
}

// parseDeadFilter reads reason, child, older_than (a duration), limit and
// all from the query.
func parseDeadFilter(q *fasthttp.Args, now time.Time) (outbox.DeadFilter, bool, error) {
	f := outbox.DeadFilter{Code: string(q.Peek("reason")), Child: string(q.Peek("child"))}
	if s := string(q.Peek("older_than")); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return f, false, fmt.Errorf("older_than: %q is not a duration such as 36h", s)
		}
		f.Until = now.Add(-d)
	}
	if s := string(q.Peek("limit")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return f, false, fmt.Errorf("limit: %q is not a count", s)
		}
		f.Limit = n
	}
	all := string(q.Peek("all"))
	if all != "" && all != "1" && all != "true" {
		return f, false, fmt.Errorf("all: %q is not 1 or true", all)
	}
	return f, all != "", nil
}

// loopbackAddr reports whether a request's remote address is this machine.
func loopbackAddr(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// ShortChild is a child hash cut for display as the household page cuts
// it: enough to tell children apart, and to filter on (--child matches a
// hash's start).
func ShortChild(h string) string {
	if len(h) > 10 {
		return h[:10] + "…"
	}
	return h
}

// deadCounts is the count of dead letters per reason code, read again
// only after a commit (the dead letters are capped: a scan is small).
func (d *Daemon) deadCounts(st outbox.Stats) map[string]int64 {
	a := d.deadAPI
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.counts != nil && a.countsAt == st.Commits {
		return a.counts
	}
	counts := map[string]int64{}
	if st.DeadLetters > 0 {
		c, err := d.outbox.DeadCounts()
		if err != nil {
			d.log.Warn("dead letters not counted", "err", err)
			return counts
		}
		counts = c
	}
	a.counts, a.countsAt = counts, st.Commits
	return counts
}

// retryDeadLetters is the household page's retry: every dead letter.
func (d *Daemon) retryDeadLetters() (int, error) {
	res, err := d.outbox.RetryDeadLetters(context.Background(), outbox.DeadFilter{})
	d.log.Info("household page: dead letters put back in the queue", "retried", res.Retried, "err", err)
	return res.Retried, err
}

// expireDeadLetters purges the dead letters past the retention window
// and the cap.
func (d *Daemon) expireDeadLetters() {
	n, err := d.outbox.PurgeExpiredDeadLetters(context.Background())
	switch {
	case err != nil:
		d.log.Warn("expired dead letters not purged; will retry in an hour", "err", err)
	case n > 0:
		d.log.Info("dead letters purged: older than retention_days or beyond outbox_dead_max_messages", "purged", n)
	}
}

var descDeadByReason = prometheus.NewDesc("hearth_outbox_dead_letters_by_reason",
	"Dead letters held, by reason code (unknown_child, foreign_child, invalid, too_old, future, unknown_type, rejected, too_large, poison, undecodable, other).",
	[]string{"code"}, nil)

// deadByReason exports the counts by reason at scrape time.
type deadByReason struct{ d *Daemon }

func (c deadByReason) Describe(ch chan<- *prometheus.Desc) { ch <- descDeadByReason }

func (c deadByReason) Collect(ch chan<- prometheus.Metric) {
	for code, n := range c.d.deadCounts(c.d.outbox.Stats()) {
		ch <- prometheus.MustNewConstMetric(descDeadByReason, prometheus.GaugeValue, float64(n), code)
	}
}
