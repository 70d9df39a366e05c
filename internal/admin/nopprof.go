//go:build nopprof

package admin

import "github.com/valyala/fasthttp"

// PprofBuilt is false in a build with -tags nopprof, as the OpenWrt
// packages are built: net/http/pprof and runtime/pprof are left out, some
// 0.45 MB of a router's flash (bench/RESULTS.md).
const PprofBuilt = false

// PprofNotBuilt is the answer under /debug/pprof/ in such a build.
const PprofNotBuilt = "Go profiles are not in this build (built with -tags nopprof, as the router packages are)"

func pprofHandler(ctx *fasthttp.RequestCtx) {
	ctx.Error(PprofNotBuilt, fasthttp.StatusNotFound)
}
