package admin

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Ensure that /metrics serves the registry in Prometheus' text format that
// a scraper parses, with labels and histograms intact: promhttp's handler,
// or the router build's text-only one (-tags textmetrics).
func TestServer_Metrics_Text(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_frames_total", Help: "Frames."}, []string{"result"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "test_commit_seconds", Help: "Commits.", Buckets: []float64{0.01, 0.1}})
	reg.MustRegister(c, h)
	c.WithLabelValues("acked").Add(3)
	h.Observe(0.05)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(Options{Name: "test", Registry: reg, Ready: func() error { return nil }})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })

	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("/metrics: %d %q, want 200 text/plain", resp.StatusCode, ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse as the text format: %v", err)
	}
	frames := mfs["test_frames_total"]
	if frames == nil || len(frames.Metric) != 1 || frames.Metric[0].GetCounter().GetValue() != 3 ||
		frames.Metric[0].Label[0].GetValue() != "acked" {
		t.Errorf("test_frames_total: %v", frames)
	}
	commits := mfs["test_commit_seconds"]
	if commits == nil || commits.Metric[0].GetHistogram().GetSampleCount() != 1 || len(commits.Metric[0].GetHistogram().Bucket) != 3 { // 0.01, 0.1, +Inf
		t.Errorf("test_commit_seconds: %v", commits)
	}
}
