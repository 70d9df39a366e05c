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

// Ensure that a rejection carries its code in the reply, and that an
// answer with codes is still read by an edge that knows only seq, status
// and error (the previous release's BatchResult).
func TestAppendBatchReply_CodeIsAdditive(t *testing.T) {
	ms := []hearth.BatchMessage{{Seq: 1}, {Seq: 2}}
	results := []store.Result{{Status: store.StatusOK}, {Status: store.StatusRejected, Code: store.CodeUnknownChild, Error: "unknown child"}}
	got := appendBatchReply(nil, ms, results)
	if want := `{"results":[{"seq":1,"status":"ok"},{"seq":2,"status":"rejected","code":"unknown_child","error":"unknown child"}]}` + "\n"; string(got) != want {
		t.Fatalf("reply %s", got)
	}
	var old struct {
		Results []struct {
			Seq    uint64 `json:"seq"`
			Status string `json:"status"`
			Error  string `json:"error,omitempty"`
		} `json:"results"`
	}
	if err := json.Unmarshal(got, &old); err != nil || len(old.Results) != 2 || old.Results[1].Error != "unknown child" {
		t.Fatalf("previous release's reading: %+v %v", old, err)
	}
}
