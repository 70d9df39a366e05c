package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/ingest"
	"github.com/guardianai/hearth/ingest/ingesttest"
	"github.com/guardianai/hearth/outbox"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// serve runs an ingest.Server over sink on 127.0.0.1:0 (under the race
// detector, unlike the process tests in apptest).
func serve(t *testing.T, sink ingest.Sink, roster ingest.Roster, cfg ingest.Config) (*ingest.Server, string) {
	t.Helper()
	return serveWith(t, sink, roster, cfg, prometheus.NewRegistry())
}

// serveWith is serve registering the server's metrics on reg.
func serveWith(t *testing.T, sink ingest.Sink, roster ingest.Roster, cfg ingest.Config, reg prometheus.Registerer) (*ingest.Server, string) {
	t.Helper()
	srv := ingest.New(sink, roster, cfg, reg, slog.New(slog.DiscardHandler))
	hs := &fasthttp.Server{Handler: srv.Handler(), MaxRequestBodySize: ingest.BodyReadLimit(64 << 10)}
	srv.ConfigureServer(hs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hs.ShutdownWithContext(ctx)
	})
	return srv, "http://" + ln.Addr().String()
}

func openOutbox(t *testing.T) *outbox.Outbox {
	t.Helper()
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	return ob
}

func window() hearth.Window {
	return hearth.Window{Now: time.Now(), MaxAge: hearth.DefaultRetention, MaxFuture: hearth.DefaultMaxFuture}
}

// Ensure that the whole protocol conforms in-process, under -race.
func TestServer_Conformance(t *testing.T) {
	_, url := serve(t, openOutbox(t), ingest.NewStaticRoster([]string{"kid-1"}), ingest.Config{Window: window})
	ingesttest.Run(t, ingesttest.Target{URL: url, Known: "kid-1", Unknown: "kid-2"})
}

// Ensure that many pipelining phones get every reply in order and every
// acked message is in the outbox once.
func TestServer_ConcurrentPipelining(t *testing.T) {
	ob := openOutbox(t)
	_, url := serve(t, ob, ingest.StaticRoster{}, ingest.Config{Window: window})
	const phones, frames = 20, 100
	var wg sync.WaitGroup
	errs := make(chan error, phones)
	for p := 0; p < phones; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- pipelinePhone(url, fmt.Sprintf("kid-%d", p), frames)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := ob.Stats().Depth; got != phones*frames {
		t.Fatalf("outbox holds %d, want %d", got, phones*frames)
	}
}

func pipelinePhone(url, child string, frames int) error {
	c, _, err := websocket.DefaultDialer.Dial("ws"+url[4:]+"/ws/ingest/"+child+"/", nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, _, err := c.ReadMessage(); err != nil {
		return err
	}
	go func() {
		for i := 0; i < frames; i++ {
			c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"type":"location","id":%d,"data":%s}`, i, ingesttest.LocationData(i))))
		}
	}()
	for i := 0; i < frames; i++ {
		var r ingesttest.Reply
		if err := c.ReadJSON(&r); err != nil {
			return err
		}
		if r.Type != "ack" || string(r.ID) != fmt.Sprint(i) {
			return fmt.Errorf("%s reply %d: %+v", child, i, r)
		}
	}
	return nil
}

// failingSink refuses everything: the store is down.
type failingSink struct{ err error }

func (f failingSink) StoreAsync(_ []hearth.Message, done func(error)) { done(f.err) }

// Ensure that a store that is down or full makes phones keep their data:
// an error frame over WS, 503 + Retry-After over HTTP.
func TestServer_SinkDown(t *testing.T) {
	for name, err := range map[string]error{"unavailable": errors.New("disk on fire"), "full": hearth.ErrFull} {
		t.Run(name, func(t *testing.T) {
			_, url := serve(t, failingSink{err}, ingest.StaticRoster{}, ingest.Config{Window: window})
			tg := ingesttest.Target{URL: url}
			c := ingesttest.MustDial(t, tg, "/ws/ingest/kid/")
			c.Expect("connection_established")
			c.Send(ingesttest.Frame("location", ingesttest.LocationData(1)))
			c.ExpectError("retry later")
			code, _, hdr := ingesttest.Post(t, tg, `{"child_hash":"kid","location_info":`+ingesttest.LocationData(2)+`}`, nil)
			if code != 503 || hdr.Get("Retry-After") == "" {
				t.Fatalf("HTTP: %d, Retry-After %q", code, hdr.Get("Retry-After"))
			}
		})
	}
}

// Ensure that Shutdown answers frames in flight and closes with 1001.
func TestServer_Shutdown(t *testing.T) {
	srv, url := serve(t, openOutbox(t), ingest.StaticRoster{}, ingest.Config{Window: window})
	c := ingesttest.MustDial(t, ingesttest.Target{URL: url}, "/ws/ingest/kid/")
	c.Expect("connection_established")
	c.Send(ingesttest.Frame("location", ingesttest.LocationData(1)))
	c.ExpectAck("location")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	c.ExpectClose(websocket.CloseGoingAway)
	if srv.Connections() != 0 {
		t.Fatalf("%d connections after shutdown", srv.Connections())
	}
}

// Ensure that every refusal carries its reason label in
// hearth_ingest_refusals_total, with a clear message to the phone.
func TestServer_RefusalMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv, url := serveWith(t, openOutbox(t), ingest.NewStaticRoster([]string{"kid"}),
		ingest.Config{Window: window, RatePerSecond: 1, RateBurst: 2}, reg)
	tg := ingesttest.Target{URL: url}

	c := ingesttest.MustDial(t, tg, "/ws/ingest/kid/")
	c.Expect("connection_established")
	for i := 0; i < 2; i++ {
		c.Send(ingesttest.Frame("location", ingesttest.LocationData(i)))
		c.ExpectAck("location")
	}
	c.Send(ingesttest.Frame("location", ingesttest.LocationData(3)))
	c.ExpectError("rate limit exceeded")
	expectRefusals(t, reg, "rate_limited", "ws", 1)

	if _, resp, err := ingesttest.Dial(t, tg, "/ws/ingest/"+strings.Repeat("x", 200)+"/"); err == nil || resp.StatusCode != 403 {
		t.Fatalf("overlong child hash: %v %v", err, resp)
	}
	expectRefusals(t, reg, "bad_child_hash", "ws", 1)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, resp, err := ingesttest.Dial(t, tg, "/ws/ingest/kid/"); err == nil || resp.StatusCode != 503 {
		t.Fatalf("connection during shutdown: %v %v", err, resp)
	}
	expectRefusals(t, reg, "shutting_down", "ws", 1)
}

func expectRefusals(t *testing.T, g prometheus.Gatherer, reason, transport string, want float64) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hearth_ingest_refusals_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["reason"] == reason && labels["transport"] == transport {
				if got := m.GetCounter().GetValue(); got != want {
					t.Fatalf("refusals{%s,%s} = %v, want %v", reason, transport, got, want)
				}
				return
			}
		}
	}
	t.Fatalf("no refusals{reason=%q,transport=%q}", reason, transport)
}

// Ensure that a child connecting again soon after a disconnect counts as a
// reconnection (the seed's "reconnection rate").
func TestServer_Reconnections(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv, url := serveWith(t, openOutbox(t), ingest.StaticRoster{}, ingest.Config{Window: window}, reg)
	tg := ingesttest.Target{URL: url}
	for i := 0; i < 3; i++ {
		c := ingesttest.MustDial(t, tg, "/ws/ingest/kid/")
		c.Expect("connection_established")
		c.Close()
		// The server must have seen the close before the next dial counts.
		deadline := time.Now().Add(5 * time.Second)
		for srv.Connections() != 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "hearth_ingest_reconnections_total" {
			if got := mf.GetMetric()[0].GetCounter().GetValue(); got != 2 {
				t.Fatalf("reconnections = %v, want 2", got)
			}
			return
		}
	}
	t.Fatal("no hearth_ingest_reconnections_total")
}
