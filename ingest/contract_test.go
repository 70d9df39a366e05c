package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/ingest"
	"github.com/guardianai/hearth/ingest/ingesttest"
	"github.com/prometheus/client_golang/prometheus"
)

// silentSink takes messages and never answers: a store that hangs.
type silentSink struct{}

func (silentSink) StoreAsync([]hearth.Message, func(error)) {}

// Ensure that a store that does not answer in time makes the phone keep
// its data (retry_later with retry_after), over WebSocket and HTTP, and
// that the session stays usable.
func TestServer_StoreTimeout(t *testing.T) {
	_, url := serve(t, silentSink{}, ingest.StaticRoster{}, ingest.Config{Window: window, StoreTimeout: 50 * time.Millisecond, RetryAfter: 7 * time.Second})
	tg := ingesttest.Target{URL: url}
	c := ingesttest.MustDial(t, tg, "/ws/ingest/kid/")
	c.Expect("connection_established")
	c.Send(ingesttest.Frame("location", ingesttest.LocationData(1)))
	r := c.ExpectErrorCode("retry_later")
	if r.RetryAfter != 7 {
		t.Fatalf("retry_after %d, want 7", r.RetryAfter)
	}
	c.Send(`{"type":"ping"}`)
	c.Expect("pong")
	code, out, hdr := ingesttest.Post(t, tg, `{"child_hash":"kid","location_info":`+ingesttest.LocationData(2)+`}`, nil)
	if code != 503 || hdr.Get("Retry-After") != "7" {
		t.Fatalf("HTTP: %d %v, Retry-After %q", code, out, hdr.Get("Retry-After"))
	}
}

// pickySink is a MessageSink that refuses every location and stores the rest.
type pickySink struct {
	mu     sync.Mutex
	stored []hearth.Message
}

func (s *pickySink) StoreAsync(msgs []hearth.Message, done func(error)) {
	s.StoreEach(msgs, func(errs []error) { done(errors.Join(errs...)) })
}

func (s *pickySink) StoreEach(msgs []hearth.Message, done func([]error)) {
	errs := make([]error, len(msgs))
	s.mu.Lock()
	for i, m := range msgs {
		if m.Kind == hearth.KindLocation {
			errs[i] = fmt.Errorf("%w: not this one", hearth.ErrUnknownChild)
			continue
		}
		s.stored = append(s.stored, m)
	}
	s.mu.Unlock()
	done(errs)
}

// Ensure that the HTTP fallback tells each section the truth when the sink
// refuses one message of a request and stores the others.
func TestServer_HTTP_PerSectionResults(t *testing.T) {
	sink := &pickySink{}
	_, url := serve(t, sink, ingest.StaticRoster{}, ingest.Config{Window: window})
	tg := ingesttest.Target{URL: url}
	body := fmt.Sprintf(`{"child_hash":"kid","screen_time_info":%s,"location_info":%s,"site_access_info":%s}`,
		ingesttest.ScreenTimeData(), ingesttest.LocationData(1), ingesttest.SiteAccessData())
	for _, tc := range []struct {
		hdr  map[string]string
		code int
	}{{nil, 200}, {map[string]string{"Hearth-Protocol": "2"}, 403}} {
		code, out, _ := ingesttest.Post(t, tg, body, tc.hdr)
		st, _ := out["screen_time"].(map[string]any)
		loc, _ := out["location"].(map[string]any)
		sa, _ := out["site_access"].(map[string]any)
		if code != tc.code || st["status"] != "ok" || sa["status"] != "ok" || loc["code"] != "unknown_child" {
			t.Fatalf("status %d body %v; want %d, screen_time and site_access ok, location unknown_child", code, out, tc.code)
		}
	}
	if len(sink.stored) != 4 {
		t.Fatalf("stored %d messages, want 4", len(sink.stored))
	}
}

// Ensure that what is skipped or normalised is counted by type, reason and
// action, and that stamping follows the configured clock.
func TestServer_NotesMetricAndClock(t *testing.T) {
	reg := prometheus.NewRegistry()
	ob := openOutbox(t)
	stamp := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	_, url := serveWith(t, ob, ingest.StaticRoster{}, ingest.Config{Window: window, Clock: func() (time.Time, bool) { return stamp, true }}, reg)
	tg := ingesttest.Target{URL: url}
	c := ingesttest.MustDial(t, tg, "/ws/ingest/kid/")
	c.Expect("connection_established")
	ts := time.Now().UTC().Format("2006-01-02T15:04:05")
	c.Send(ingesttest.Frame("location", `{"timestamp":"`+ts+`","latitude":1,"longitude":2,"speed":1}`))
	c.ExpectAck("location")
	for _, tc := range []struct {
		reason, action string
	}{{hearth.NoteTimeNoZone, "normalised"}, {hearth.NoteUnknownField, "ignored"}} {
		got := metricValue(t, reg, "hearth_ingest_notes_total", map[string]string{"type": "location", "reason": tc.reason, "action": tc.action})
		if got != 1 {
			t.Fatalf("notes{%s,%s} = %v, want 1", tc.reason, tc.action, got)
		}
	}
	recs, err := ob.ReadOldest(10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("outbox: %v %v", recs, err)
	}
	if m := recs[0].Msg; !m.ReceivedAt.Equal(stamp) || !m.Synced {
		t.Fatalf("stored received_at %s synced %v, want %s true", m.ReceivedAt, m.Synced, stamp)
	}
}

// Ensure that a roster that cannot answer makes phones wait: 503 with
// Retry-After before the upgrade and on POST, error frame and 1013 in the
// auth flow.
func TestServer_RosterUnavailable(t *testing.T) {
	_, url := serve(t, openOutbox(t), downRoster{}, ingest.Config{Window: window})
	tg := ingesttest.Target{URL: url}
	if _, resp, err := ingesttest.Dial(t, tg, "/ws/ingest/kid/"); err == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("direct: %v %+v", err, resp)
	}
	code, out, hdr := ingesttest.Post(t, tg, `{"child_hash":"kid","location_info":`+ingesttest.LocationData(1)+`}`, nil)
	if code != 503 || hdr.Get("Retry-After") == "" {
		t.Fatalf("HTTP: %d %v", code, out)
	}
	c := ingesttest.MustDial(t, tg, "/ws/ingest-auth/")
	c.Expect("auth_required")
	c.Send(`{"type":"auth","child_hash":"kid"}`)
	c.ExpectErrorCode("retry_later")
	c.ExpectClose(1013)
}

type downRoster struct{}

func (downRoster) Known(context.Context, string) (bool, error) {
	return false, hearth.ErrUnavailable
}

// metricValue returns the value of the counter name with labels in g.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// Ensure that with protocol 2 the request's status says what the phone
// must do first: a child refusal (403) outranks invalid data (422).
func TestServer_HTTP_StatusRank(t *testing.T) {
	_, url := serve(t, openOutbox(t), ingest.StaticRoster{}, ingest.Config{Window: window})
	body := `{"child_hash":"kid","location_info":{"child_hash":"other","timestamp":"2025-12-10T10:30:00Z","latitude":1,"longitude":1},"site_access_info":{"logs":"x"}}`
	code, out, _ := ingesttest.Post(t, ingesttest.Target{URL: url}, body, map[string]string{"Hearth-Protocol": "2"})
	if code != 403 {
		t.Fatalf("status %d (%v), want 403", code, out)
	}
}
