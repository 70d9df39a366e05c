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
