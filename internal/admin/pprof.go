//go:build !nopprof

package admin

import (
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// PprofBuilt: this build can serve Go's profiles (see nopprof.go).
const PprofBuilt = true

// pprofHandler serves Go's profiles on the admin listener (loopback by
// default): how an operator finds where a slow box spends its time.
var pprofHandler = fasthttpadaptor.NewFastHTTPHandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	switch strings.TrimPrefix(r.URL.Path, "/debug/pprof/") {
	case "profile":
		pprof.Profile(w, r)
	case "trace":
		pprof.Trace(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "cmdline":
		// The command line can hold secrets (an --admin-token or a
		// --central-token), so it is never served.
		http.Error(w, "cmdline is not served: the command line may hold tokens", http.StatusForbidden)
	default:
		pprof.Index(w, r)
	}
})
