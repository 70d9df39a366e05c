package admin

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Ensure that Go's profiles are not served unless enabled, and that the
// refusal says how to enable them.
func TestServer_PprofOffByDefault(t *testing.T) {
	base := startAdmin(t, Options{})
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/heap", "/debug/pprof/cmdline"} {
		code, body := get(t, base+p)
		if code != http.StatusNotFound || !strings.Contains(body, "--pprof") {
			t.Errorf("%s with pprof off: %d %q, want 404 saying how to enable it", p, code, body)
		}
	}
	if _, body := get(t, base+"/nope"); strings.Contains(body, "/debug/pprof/") {
		t.Errorf("the 404 lists /debug/pprof/ while it is off: %q", body)
	}
	if code, _ := get(t, base+"/metrics"); code != http.StatusOK {
		t.Errorf("/metrics: %d", code)
	}
}

// startAdmin serves an admin server with o (plus a registry and a ready
// check) on a loopback port and returns its base URL.
func startAdmin(t *testing.T, o Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.Name, o.Registry, o.Ready = "test", prometheus.NewRegistry(), func() error { return nil }
	srv := NewServer(o)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
