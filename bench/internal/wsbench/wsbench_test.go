package wsbench

import "testing"

// Ensure that the ack names the frame's type and echoes its id, as
// hearth-load checks.
func TestAppendAck(t *testing.T) {
	for _, tc := range []struct{ frame, want string }{
		{`{"type":"location","data":{},"id":7,"x":1}`, `{"type":"ack","message_type":"location","status":"success","result":{"stored":true},"id":7}`},
		{`{"type":"location","data":{}}`, `{"type":"ack","message_type":"location","status":"success","result":{"stored":true}}`},
	} {
		if got := string(AppendAck([]byte("x"), []byte(tc.frame))); got != "x"+tc.want {
			t.Errorf("AppendAck(%s) = %s, want x%s", tc.frame, got, tc.want)
		}
	}
}
