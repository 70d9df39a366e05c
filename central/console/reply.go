package console

import (
	"encoding/json"

	"github.com/valyala/fasthttp"
)

func writeJSON(ctx *fasthttp.RequestCtx, v any) {
	ctx.SetContentType("application/json")
	b, err := json.Marshal(v)
	if err != nil {
		panic("BUG: console JSON: " + err.Error())
	}
	ctx.SetBody(append(b, '\n'))
}

// textError answers status with a plain-text reason. Unlike
// fasthttp's ctx.Error it keeps the headers set so far (Retry-After,
// Allow, the security headers).
func textError(ctx *fasthttp.RequestCtx, msg string, status int) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(msg)
}
