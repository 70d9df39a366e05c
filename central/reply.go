package central

import (
	"bytes"
	"encoding/json"
	"github.com/guardianai/hearth/ingest"
	"time"

	"github.com/valyala/fasthttp"
)

// writeJSON answers status with v as JSON.
func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("BUG: marshal reply: " + err.Error())
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}

// writeError answers status with {"error": reason}.
func writeError(ctx *fasthttp.RequestCtx, status int, reason string) {
	writeJSON(ctx, status, map[string]string{"error": reason})
}

// writeUnavailable answers 503 with Retry-After: the client keeps its data
// and comes back.
func writeUnavailable(ctx *fasthttp.RequestCtx, retry time.Duration, reason string) {
	ctx.Response.Header.Set("Retry-After", ingest.RetryAfter(retry))
	writeError(ctx, fasthttp.StatusServiceUnavailable, reason)
}

// writeUnauthorized answers 401 with the challenge.
func writeUnauthorized(ctx *fasthttp.RequestCtx, reason string) {
	ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="hearth-central"`)
	writeError(ctx, fasthttp.StatusUnauthorized, reason)
}

// bearer returns the token of an "Authorization: Bearer …" header.
func bearer(ctx *fasthttp.RequestCtx) (string, bool) {
	h := bytes.TrimSpace(ctx.Request.Header.Peek("Authorization"))
	const prefix = "bearer "
	if len(h) <= len(prefix) || !bytes.EqualFold(h[:len(prefix)], []byte(prefix)) {
		return "", false
	}
	tok := string(bytes.TrimSpace(h[len(prefix):]))
	return tok, tok != ""
}
