package central

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/guardianai/hearth"
)

// Ensure that the read API pages: limit rows a reply, next_cursor until
// the last page, the pages together the whole range once each; that to
// defaults to now; and that out-of-bounds limits, cursors and screen-time
// ranges are refused with a reason.
func TestServer_ReadAPI_Pages(t *testing.T) {
	ts := startTestServer(t, func(c *Config) { c.AdminToken = testAdminToken })
	now := time.Now().UTC()
	for i := range 7 {
		body := fmt.Sprintf(`{"edge_id":"e","sent_at":%q,"messages":[%s]}`, now.Format(time.RFC3339Nano), location(i, ts.child, now.Add(-time.Duration(i+1)*time.Minute)))
		if code, reply, _ := ts.post(t, []byte(body), nil); code != 200 || !strings.Contains(reply, `"ok"`) {
			t.Fatalf("batch %d: %d %s", i, code, reply)
		}
	}
	from := url.QueryEscape(now.Add(-time.Hour).Format(time.RFC3339))
	base := ts.url + PathChildren + ts.child + "/locations?from=" + from // no to: now
	var seen []string
	cursor, pages := "", 0
	for {
		code, reply := do(t, nil, "GET", base+"&limit=3&cursor="+cursor, testAdminToken, nil)
		var r LocationsReply
		if err := json.Unmarshal([]byte(reply), &r); code != 200 || err != nil {
			t.Fatalf("page %d: %d %s", pages, code, reply)
		}
		pages++
		if len(r.Locations) > 3 || (r.NextCursor != "" && len(r.Locations) != 3) {
			t.Fatalf("page %d: %d rows, next %q", pages, len(r.Locations), r.NextCursor)
		}
		for _, l := range r.Locations {
			seen = append(seen, l.Timestamp.Format(time.RFC3339Nano))
		}
		if r.NextCursor == "" {
			break
		}
		cursor = r.NextCursor
	}
	if pages != 3 || len(seen) != 7 {
		t.Fatalf("%d pages, %d rows: %v; want 3 pages of 7 rows", pages, len(seen), seen)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] <= seen[i-1] {
			t.Fatalf("rows repeat or go back: %v", seen)
		}
	}
	for _, tc := range []struct{ path, reason string }{
		{base + "&limit=0", "limit"},
		{base + "&limit=10001", "limit"},
		{base + "&cursor=%21%21", "cursor"},
		{ts.url + PathChildren + ts.child + "/screen_time?from=2020-01-01&to=2025-01-01", "at most 400"},
		{ts.url + PathChildren + ts.child + "/screen_time?from=2020-01-0", "from"},
	} {
		code, reply := do(t, nil, "GET", tc.path, testAdminToken, nil)
		if code != 400 || !strings.Contains(reply, tc.reason) {
			t.Errorf("%s: %d %s, want 400 with %q", tc.path, code, reply, tc.reason)
		}
	}
	day := now.AddDate(0, 0, -3).Format(hearth.DateLayout)
	code, reply := do(t, nil, "GET", ts.url+PathChildren+ts.child+"/screen_time?from="+day, testAdminToken, nil)
	var st ScreenTimeReply
	if json.Unmarshal([]byte(reply), &st); code != 200 || st.To != now.Format(hearth.DateLayout) {
		t.Fatalf("screen_time without to: %d %s", code, reply)
	}
}
