package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/internal/testutil"
	"github.com/guardianai/hearth/outbox"
)

// deadLetterDaemon is a standalone daemon whose outbox holds n dead
// letters of reason code unknown_child.
func deadLetterDaemon(t *testing.T, n int, edit func(*Config)) *Daemon {
	t.Helper()
	d := startDaemon(t, "", edit)
	msgs := make([]hearth.Message, n)
	for i := range msgs {
		msgs[i] = hearth.Message{ChildHash: fmt.Sprintf("child-number-%d-abcdef", i), Kind: hearth.KindLocation, Via: "ws",
			ReceivedAt: time.Now(), Data: []byte(`{"latitude":1}`)}
	}
	seqs, err := d.Outbox().Append(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range seqs {
		if err := d.Outbox().DeadLetter(s, outbox.DeadReason("unknown_child", "unknown child")); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// adminCall sends a dead-letter request to d's admin listener.
func adminCall(t *testing.T, d *Daemon, method, path string, q url.Values, header bool) (int, DeadLettersReply) {
	t.Helper()
	u := "http://" + d.AdminAddr() + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, _ := http.NewRequest(method, u, nil)
	if header {
		req.Header.Set(AdminHeader, "1")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r DeadLettersReply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, r
}

// adminMetric reads one series of the admin /metrics.
func adminMetric(t *testing.T, d *Daemon, series string) string {
	t.Helper()
	resp, err := http.Get("http://" + d.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// Ensure that every refusal of the dead-letter API has its status, reason
// and metric label, and that nothing is changed by one.
func TestDeadLetterAPI_Refusals(t *testing.T) {
	d := deadLetterDaemon(t, 2, nil)
	for _, tc := range []struct {
		name, method, path string
		q                  url.Values
		header             bool
		status             int
		reason, label      string
	}{
		{"list by POST", "POST", PathDeadLetters, nil, true, 405, "method not allowed", `action="list",result="method"`},
		{"retry by GET", "GET", PathDeadLettersRetry, nil, true, 405, "method not allowed", `action="retry",result="method"`},
		{"retry without the header", "POST", PathDeadLettersRetry, nil, false, 403, AdminHeader, `action="retry",result="no_header"`},
		{"purge without the header", "POST", PathDeadLettersPurge, url.Values{"all": {"1"}}, false, 403, AdminHeader, `action="purge",result="no_header"`},
		{"bad age", "GET", PathDeadLetters, url.Values{"older_than": {"yesterday"}}, false, 400, "older_than", `action="list",result="bad_filter"`},
		{"bad limit", "POST", PathDeadLettersRetry, url.Values{"limit": {"-1"}}, true, 400, "limit", `action="retry",result="bad_filter"`},
		{"purge without a filter", "POST", PathDeadLettersPurge, nil, true, 400, "needs a filter", `action="purge",result="no_filter"`},
	} {
		code, r := adminCall(t, d, tc.method, tc.path, tc.q, tc.header)
		if code != tc.status || !strings.Contains(r.Error, tc.reason) {
			t.Errorf("%s: %d %q, want %d and %q", tc.name, code, r.Error, tc.status, tc.reason)
		}
		if v := adminMetric(t, d, "hearth_admin_deadletters_requests_total{"+tc.label+"}"); v != "1" {
			t.Errorf("%s: metric {%s} = %q, want 1", tc.name, tc.label, v)
		}
	}
	if n := d.Status().DeadLetters; n != 2 {
		t.Fatalf("%d dead letters after refusals, want 2", n)
	}
}

// Ensure that a retry the quota has no room for (it was lowered since the
// dead letters were moved) is refused with 507, its reason and label.
func TestDeadLetterAPI_RetryOverQuota(t *testing.T) {
	dir := t.TempDir()
	d := deadLetterDaemon(t, 3, func(c *Config) { c.DataDir = dir })
	if err := d.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	d = startDaemon(t, "", func(c *Config) { c.DataDir, c.OutboxMaxMessages = dir, 2 })
	code, r := adminCall(t, d, "POST", PathDeadLettersRetry, nil, true)
	if code != 507 || !strings.Contains(r.Error, "quota") || r.Retried != 0 {
		t.Fatalf("retry over the quota: %d %+v", code, r)
	}
	if v := adminMetric(t, d, `hearth_admin_deadletters_requests_total{action="retry",result="full"}`); v != "1" {
		t.Fatalf("metric full = %q", v)
	}
}

// Ensure that the API lists, filters, retries and purges, and that /status
// and /metrics count the dead letters by reason code.
func TestDeadLetterAPI_ListRetryPurge(t *testing.T) {
	d := deadLetterDaemon(t, 4, nil)
	if st := d.Status(); st.DeadLettersByReason["unknown_child"] != 4 {
		t.Fatalf("status by reason %v", st.DeadLettersByReason)
	}
	if v := adminMetric(t, d, `hearth_outbox_dead_letters_by_reason{code="unknown_child"}`); v != "4" {
		t.Fatalf("metric by reason = %q", v)
	}
	code, r := adminCall(t, d, "GET", PathDeadLetters, url.Values{"child": {"child-number-1"}}, false)
	if code != 200 || len(r.DeadLetters) != 1 || r.DeadLetters[0].Child != "child-numb…" || r.DeadLetters[0].Code != "unknown_child" ||
		r.DeadLetters[0].Type != "location" || r.DeadLetters[0].Size <= 0 {
		t.Fatalf("list by child: %d %+v", code, r)
	}
	if code, r := adminCall(t, d, "POST", PathDeadLettersRetry, url.Values{"limit": {"1"}}, true); code != 200 || r.Retried != 1 {
		t.Fatalf("retry one: %d %+v", code, r)
	}
	if code, r := adminCall(t, d, "POST", PathDeadLettersPurge, url.Values{"reason": {"too_large"}}, true); code != 200 || r.Purged != 0 {
		t.Fatalf("purge of another code: %d %+v", code, r)
	}
	if code, r := adminCall(t, d, "POST", PathDeadLettersPurge, url.Values{"all": {"1"}}, true); code != 200 || r.Purged != 3 {
		t.Fatalf("purge all: %d %+v", code, r)
	}
	if st := d.Status(); st.DeadLetters != 0 || st.OutboxDepth != 1 || len(st.DeadLettersByReason) != 0 {
		t.Fatalf("status %+v", st)
	}
}

// Ensure that only a loopback peer may change dead letters.
func TestDeadLetterAPI_LoopbackOnly(t *testing.T) {
	for addr, want := range map[net.Addr]bool{
		&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}:   true,
		&net.TCPAddr{IP: net.IPv6loopback}:         true,
		&net.TCPAddr{IP: net.IPv4(192, 168, 1, 2)}: false,
		&net.UnixAddr{Name: "/tmp/x"}:              false,
	} {
		if got := loopbackAddr(addr); got != want {
			t.Errorf("loopbackAddr(%v) = %v", addr, got)
		}
	}
}

// Ensure that the household page's retry button is wired to the outbox.
func TestPage_RetryButtonRetriesDeadLetters(t *testing.T) {
	dir := t.TempDir()
	d := deadLetterDaemon(t, 2, withPage(dir))
	code, body := pageBody(t, d, "s3cret-page")
	if code != 200 || !strings.Contains(body, `id="retry"`) {
		t.Fatalf("page %d lacks the retry button", code)
	}
	n, err := d.retryDeadLetters()
	if err != nil || n != 2 || d.Status().DeadLetters != 0 {
		t.Fatalf("retry %d %v, status %+v", n, err, d.Status())
	}
}

// Ensure that on a 32-bit CPU a quota the mapped file cannot hold is
// refused with the reason, and that 64-bit builds are not limited.
func TestConfig_QuotaWithinTheMapOn32Bit(t *testing.T) {
	if errs := checkMapLimitFor(1<<30, 32); len(errs) != 1 || !strings.Contains(errs[0].Error(), "32-bit") {
		t.Fatalf("1 GiB on 32-bit: %v", errs)
	}
	if errs := checkMapLimitFor(0, 32); len(errs) != 1 {
		t.Fatalf("no quota on 32-bit: %v", errs)
	}
	if errs := checkMapLimitFor(256<<20, 32); errs != nil {
		t.Fatalf("the 32-bit default refused: %v", errs)
	}
	if errs := checkMapLimitFor(0, 64); errs != nil {
		t.Fatalf("64-bit: %v", errs)
	}
}

// Ensure that /status clears the forward error after a success and
// keeps its time.
func TestStatus_ForwardErrorClearedOnSuccess(t *testing.T) {
	fc := startCentral(t, 0, "kid")
	var failing atomic.Bool
	failing.Store(true)
	target, _ := url.Parse(fc.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == hearth.PathEdgeBatches && failing.Load() {
			http.Error(w, `{"error":"internal error; retry later"}`, http.StatusInternalServerError)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	d := startDaemon(t, front.URL, nil)
	if _, err := d.Outbox().Append(context.Background(), []hearth.Message{{ChildHash: "kid", Kind: hearth.KindLocation, Via: "ws",
		ReceivedAt: time.Now(), Data: []byte(`{"latitude":1}`)}}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, func() error {
		if st := d.Status(); st.LastForwardError == "" || st.LastForwardErrorAt == nil {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	failing.Store(false)
	testutil.WaitFor(t, 5*time.Second, func() error {
		if st := d.Status(); st.LastForwardError != "" || st.LastForwardErrorAt == nil || st.OutboxDepth != 0 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
}

// Ensure that the new keys' out-of-range values are refused with the key
// named, and the defaults pass.
func TestConfig_Validate_ReplayAndDeadLetterKeys(t *testing.T) {
	base := DefaultConfig()
	base.CentralURL, base.CentralToken = "https://central:8443", "tok"
	if err := base.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for name, edit := range map[string]func(*Config){
		"forward_max_rate":         func(c *Config) { c.ForwardMaxRate = -1 },
		"forward_replay_age":       func(c *Config) { c.ForwardReplayAge = -time.Second },
		"outbox_dead_max_messages": func(c *Config) { c.OutboxDeadMaxMessages = -1 },
	} {
		cfg := base
		edit(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s out of range: Validate = %v", name, err)
		}
	}
}
