package household

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

const testPassword = "correct horse"

// servePage serves a page on 127.0.0.1 and returns its base URL.
func servePage(t *testing.T, o Options) string {
	t.Helper()
	if o.Password == "" {
		o.Password = testPassword
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: p.Handler}
	go srv.Serve(ln)
	t.Cleanup(func() { _ = srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, u, user, pass string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func post(t *testing.T, u string, form url.Values, origin string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(User, testPassword)
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func snapshot() Snapshot {
	now := time.Now()
	return Snapshot{
		Version: "1.2.3", Now: now, Connections: 2,
		Children: []ChildDay{
			{Hash: "aaaaaaaaaaaaaaaaaaaaaaaa", Last: now.Add(-90 * time.Second), Stored: map[string]int{"location": 17, "screen_time": 4}},
			{Hash: "bbbbbbbbbbbbbbbbbbbbbbbb", Refused: map[string]int{"future": 6}, LastRefusal: "future", LastRefusalAt: now},
		},
		Names:       map[string]string{"aaaaaaaaaaaaaaaaaaaaaaaa": "Alice"},
		Backlog:     Backlog{Messages: 42, Bytes: 8192, OldestAge: 3 * time.Minute},
		Link:        Link{State: LinkWaiting, Central: "https://central", LastError: "dial tcp: connection refused", LastErrorAt: now},
		DeadLetters: []DeadLetter{{Child: "bbbbbbbbbbbbbbbbbbbbbbbb", Kind: "location", Received: now, Code: "unknown_child", Reason: "unknown child"}},
		DeadTotal:   1,
	}
}

func TestPage_NeedsThePassword(t *testing.T) {
	base := servePage(t, Options{Snapshot: snapshot})
	if code, _, h := get(t, base+"/", "", ""); code != 401 || !strings.Contains(h.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("no password: %d %v", code, h)
	}
	if code, _, _ := get(t, base+"/", User, "wrong"); code != 401 {
		t.Fatalf("wrong password: %d", code)
	}
	if code, _, _ := get(t, base+"/", "admin", testPassword); code != 401 {
		t.Fatalf("wrong user: %d", code)
	}
	if code, _, _ := get(t, base+"/", User, testPassword); code != 200 {
		t.Fatalf("right password: %d", code)
	}
}

func TestPage_ThrottlesPasswordGuessing(t *testing.T) {
	base := servePage(t, Options{Snapshot: snapshot})
	for range 10 {
		get(t, base+"/", User, "guess")
	}
	code, body, h := get(t, base+"/", User, testPassword)
	if code != 429 || h.Get("Retry-After") == "" || !strings.Contains(body, "too many wrong passwords") {
		t.Fatalf("after 10 wrong passwords, the right one got %d %q", code, body)
	}
}

func TestNew_RefusesAnEmptyPassword(t *testing.T) {
	if _, err := New(Options{Snapshot: snapshot}); err == nil || !strings.Contains(err.Error(), "page_password_file") {
		t.Fatalf("empty password: %v", err)
	}
}

func TestPage_ShowsTheNumbersInPlainWords(t *testing.T) {
	base := servePage(t, Options{Snapshot: snapshot, Retry: func() (int, error) { return 0, nil }})
	code, body, h := get(t, base+"/", User, testPassword)
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{
		`<span class="big" id="connections">2</span> phones connected`,
		"Alice", "bbbbbbbbbb…", // a name from central, else the shortened hash
		`<td class="count">17</td>`, `<td class="count">4</td>`,
		"6×", "the phone&#39;s clock is ahead",
		`<b id="backlog-messages">42</b> messages (8.0 KB, the oldest 3 min old)`,
		"waiting for central", "dial tcp: connection refused",
		"unknown child", "add the child at central, then retry", `id="retry"`, "hearth 1.2.3",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") || h.Get("X-Frame-Options") != "DENY" {
		t.Errorf("security headers: %v", h)
	}
	if strings.Contains(body, "<script") || strings.Contains(body, "http://") && !strings.Contains(body, "https://central") {
		t.Error("page loads scripts or external assets")
	}
}

func TestPage_RetryNeedsItsFormTokenAndThisOrigin(t *testing.T) {
	var retried atomic.Int32
	base := servePage(t, Options{Snapshot: snapshot, Retry: func() (int, error) { retried.Add(1); return 1, nil }})
	_, body, _ := get(t, base+"/", User, testPassword)
	token := between(body, `name="csrf" value="`, `"`)
	if token == "" {
		t.Fatal("no form token on the page")
	}
	if code := post(t, base+"/retry-dead-letters", url.Values{}, ""); code != 403 {
		t.Errorf("post without a token: %d", code)
	}
	if code := post(t, base+"/retry-dead-letters", url.Values{"csrf": {token}}, "http://evil.example"); code != 403 {
		t.Errorf("post from another origin: %d", code)
	}
	if retried.Load() != 0 {
		t.Fatal("a refused post ran the retry")
	}
	if code := post(t, base+"/retry-dead-letters", url.Values{"csrf": {token}}, base); code != 303 {
		t.Fatalf("post with the token: %d", code)
	}
	if retried.Load() != 1 {
		t.Fatal("retry not run")
	}
	if _, body, _ := get(t, base+"/", User, testPassword); !strings.Contains(body, "1 dead letter(s) queued to be sent again") {
		t.Error("the outcome is not shown")
	}
	if code, _, _ := get(t, base+"/retry-dead-letters", User, testPassword); code != 405 {
		t.Errorf("GET of the action: %d", code)
	}
	if code, _, _ := get(t, base+"/metrics", User, testPassword); code != 404 {
		t.Errorf("the page serves %s: %d", "/metrics", code)
	}
}

func TestPage_WithoutDeadLettersOrRetry_ShowsNoButton(t *testing.T) {
	s := snapshot()
	s.DeadLetters, s.DeadTotal = nil, 0
	base := servePage(t, Options{Snapshot: func() Snapshot { return s }, Retry: func() (int, error) { return 0, nil }})
	_, body, _ := get(t, base+"/", User, testPassword)
	if strings.Contains(body, `id="retry"`) || !strings.Contains(body, `id="dead-none"`) {
		t.Error("retry button without dead letters")
	}
}

func between(s, from, to string) string {
	_, after, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, to)
	return v
}
