package central

import (
	"encoding/json"
	"strconv"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/store"
	"github.com/valyala/fasthttp"
)

// writeBatchReply answers 200 with one result per message: the bytes
// json.Marshal writes for hearth.BatchReply{Results: WireResults(ms,
// results)}, appended without reflection (a batch's reply costs more than
// its decoding otherwise).
func writeBatchReply(ctx *fasthttp.RequestCtx, ms []hearth.BatchMessage, results []store.Result) {
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/json")
	ctx.SetBody(appendBatchReply(make([]byte, 0, 32+len(results)*32), ms, results))
}

// appendBatchReply appends the reply to buf, newline included.
func appendBatchReply(buf []byte, ms []hearth.BatchMessage, results []store.Result) []byte {
	buf = append(buf, `{"results":[`...)
	for i, r := range results {
		if r.Status != store.StatusOK && r.Status != store.StatusRejected {
			panic("BUG: result status " + r.Status)
		}
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"seq":`...)
		buf = strconv.AppendUint(buf, ms[i].Seq, 10)
		buf = append(buf, `,"status":"`...)
		buf = append(buf, r.Status...)
		buf = append(buf, '"')
		if r.Status == store.StatusRejected && r.Code != "" {
			buf = append(append(append(buf, `,"code":"`...), r.Code...), '"')
		}
		if r.Error != "" {
			e, err := json.Marshal(r.Error) // rare: its escaping is encoding/json's
			if err != nil {
				panic("BUG: marshal reason: " + err.Error())
			}
			buf = append(append(buf, `,"error":`...), e...)
		}
		buf = append(buf, '}')
	}
	return append(buf, "]}\n"...)
}

// writeBatchError answers a refusal of a whole batch: {"error":…,
// "scope":"batch"}. The scope tells the edge that no message was judged,
// so it must not take the refusal out on any one of them (docs/edge-api.md).
func writeBatchError(ctx *fasthttp.RequestCtx, status int, reason string) {
	writeJSON(ctx, status, map[string]string{"error": reason, "scope": hearth.ScopeBatch})
}
