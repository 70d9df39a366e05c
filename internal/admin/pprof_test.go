//go:build !nopprof

package admin

import (
	"net/http"
	"os"
	"strings"
	"testing"
)

// Ensure that the admin listener never reveals the command line, which may
// carry tokens, while the other profiles stay available.
func TestServer_PprofCmdline_NotServed(t *testing.T) {
	base := startAdmin(t, Options{Pprof: true})

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
