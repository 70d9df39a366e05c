package central

import (
	"encoding/json"
	"testing"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/store"
)

// Ensure that the appended reply is byte for byte what encoding/json
// writes, reasons with quotes, HTML, control and non-ASCII characters
// included.
func TestAppendBatchReply_AsEncodingJSON(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		ms := make([]hearth.BatchMessage, n)
		results := make([]store.Result, n)
		reasons := []string{"", `data: "x" <b>&amp;</b>`, "unknown child \u2028 é \x01"}
		for i := range ms {
			ms[i].Seq = ^uint64(0) - uint64(i)
			results[i] = store.Result{Status: store.StatusOK}
			if reasons[i] != "" {
				results[i] = store.Result{Status: store.StatusRejected, Code: "invalid", Error: reasons[i]}
			}
		}
		want, err := json.Marshal(hearth.BatchReply{Results: WireResults(ms, results)})
		if err != nil {
			t.Fatal(err)
		}
		if got := string(appendBatchReply(nil, ms, results)); got != string(want)+"\n" {
			t.Errorf("%d results:\n got %s\nwant %s", n, got, want)
		}
	}
}
