package admin

import (
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Ensure that the admin listener never reveals the command line, which may
// carry tokens, while the other profiles stay available.
func TestServer_PprofCmdline_NotServed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(Options{Name: "test", Registry: prometheus.NewRegistry(), Ready: func() error { return nil }})
	go srv.Serve(ln)
	defer srv.Shutdown()
	base := "http://" + ln.Addr().String()

	code, body := get(t, base+"/debug/pprof/cmdline")
	if code != http.StatusForbidden {
		t.Fatalf("cmdline: status %d, want 403", code)
	}
	for _, arg := range os.Args {
		if len(arg) > 3 && strings.Contains(body, arg) {
			t.Fatalf("cmdline body reveals argument %q: %q", arg, body)
		}
	}
	if code, _ := get(t, base+"/debug/pprof/goroutine?debug=1"); code != http.StatusOK {
		t.Fatalf("goroutine profile: status %d, want 200", code)
	}
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
