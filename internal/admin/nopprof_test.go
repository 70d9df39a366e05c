//go:build nopprof

package admin

import (
	"net/http"
	"strings"
	"testing"
)

// Ensure that a build without profiles says so under /debug/pprof/, even
// when they are asked for, and does not list them.
func TestServer_NoPprofBuild(t *testing.T) {
	base := startAdmin(t, Options{Pprof: true})
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
		if code, body := get(t, base+p); code != http.StatusNotFound || !strings.Contains(body, "nopprof") {
			t.Errorf("%s: %d %q, want 404 saying the build has no profiles", p, code, body)
		}
	}
	if _, body := get(t, base+"/nope"); strings.Contains(body, "/debug/pprof/") {
		t.Errorf("the 404 lists /debug/pprof/ in a build without it: %q", body)
	}
}
