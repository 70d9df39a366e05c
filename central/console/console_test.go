package console

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/fleet"
	"github.com/guardianai/hearth/central/store"
	htestutil "github.com/guardianai/hearth/internal/testutil"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/valyala/fasthttp"
)

const adminToken = "the-admin-token-of-this-test-0123456789"

// world is a console on a real listener over a SQLite store with one
// home, one named child and a day of its data.
type world struct {
	t     *testing.T
	c     *Console
	st    store.Store
	base  string
	home  string
	token string
	child string
	log   *htestutil.SyncBuffer
	reg   *prometheus.Registry
	now   time.Time
	mu    sync.Mutex
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{t: t, log: &htestutil.SyncBuffer{}, reg: prometheus.NewRegistry(), now: time.Now().UTC()}
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w.st = st
	if w.home, w.token, err = st.AddHome(ctx, "The Smiths"); err != nil {
		t.Fatal(err)
	}
	if w.child, err = st.AddChild(ctx, w.home, "kid-ada"); err != nil {
		t.Fatal(err)
	}
	if err := st.SetChildName(ctx, w.home, w.child, "Ada <b>"); err != nil {
		t.Fatal(err)
	}
	day := w.now.Format(hearth.DateLayout)
	msgs := []hearth.Message{
		msg(w.child, hearth.KindScreenTime, w.now, map[string]any{"date": day, "total_screen_time": 5400,
			"app_wise_data": map[string]map[string]int64{"com.video": {"9": 3600}, "com.chat": {"10": 1800}}}),
		msg(w.child, hearth.KindLocation, w.now, map[string]any{"timestamp": w.now.Add(-time.Hour).Format(time.RFC3339), "latitude": 51.5, "longitude": -0.12}),
	}
	if _, err := st.Apply(ctx, w.home, msgs); err != nil {
		t.Fatal(err)
	}
	w.c = New(Options{Store: st, IsAdmin: func(tok string) bool { return tok == adminToken }, Version: "1.2.3-test",
		Log: slog.New(slog.NewTextHandler(w.log, nil)), Registry: w.reg, Now: w.clock})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: w.c.Handle}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	w.base = "http://" + ln.Addr().String()
	return w
}

func (w *world) clock() time.Time { w.mu.Lock(); defer w.mu.Unlock(); return w.now }
func (w *world) advance(d time.Duration) {
	w.mu.Lock()
	w.now = w.now.Add(d)
	w.mu.Unlock()
}

func msg(child string, kind hearth.Kind, recv time.Time, data any) hearth.Message {
	b, _ := json.Marshal(data)
	return hearth.Message{ChildHash: child, Kind: kind, ReceivedAt: recv, Via: hearth.ViaWS, Data: b}
}

// browser is an HTTP client with cookies that does not follow redirects.
func (w *world) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (w *world) do(c *http.Client, method, path string, form url.Values, header ...string) (*http.Response, string) {
	w.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, w.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// login logs c in and returns the session's CSRF token.
func (w *world) login(c *http.Client) string {
	w.t.Helper()
	_, page := w.do(c, "GET", "/login", nil)
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		w.t.Fatalf("login page without a CSRF field:\n%s", page)
	}
	resp, _ := w.do(c, "POST", "/login", url.Values{"csrf": {m[1]}, "token": {adminToken}})
	if resp.StatusCode != http.StatusSeeOther {
		w.t.Fatalf("login: %d", resp.StatusCode)
	}
	_, page = w.do(c, "GET", "/", nil)
	if m = csrfField.FindStringSubmatch(page); m == nil {
		w.t.Fatalf("homes page without the session's CSRF token:\n%s", page)
	}
	return m[1]
}

// Ensure that a browser without a session is sent to the login page, that
// a login sets a session cookie (HttpOnly, SameSite=Strict, expiring,
// never the token) and that the homes page then shows the home.
func TestConsole_Login(t *testing.T) {
	w := newWorld(t)
	c := w.browser()
	if resp, _ := w.do(c, "GET", "/", nil); resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("GET / without a session: %d %q, want 303 to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, page := w.do(c, "POST", "/homes/"+w.home+"/revoke", url.Values{}); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "not logged in") {
		t.Fatalf("POST without a session: %d %q, want 401", resp.StatusCode, page)
	}
	if n := testutil.ToFloat64(w.c.refused.WithLabelValues(RefusedNoSession)); n != 2 {
		t.Fatalf("refused no_session = %v, want 2", n)
	}
	_, page := w.do(c, "GET", "/login", nil)
	csrf := csrfField.FindStringSubmatch(page)[1]
	resp, page := w.do(c, "POST", "/login", url.Values{"csrf": {csrf}, "token": {"wrong"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "not the admin token") {
		t.Fatalf("wrong token: %d\n%s", resp.StatusCode, page)
	}
	csrf = csrfField.FindStringSubmatch(page)[1]
	resp, _ = w.do(c, "POST", "/login", url.Values{"csrf": {csrf}, "token": {adminToken}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	cookie := resp.Header.Values("Set-Cookie")
	var ses string
	for _, k := range cookie {
		if strings.HasPrefix(k, sessionCookie+"=") {
			ses = k
		}
	}
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "max-age=43200", "path=/"} {
		if !strings.Contains(strings.ToLower(ses), strings.ToLower(want)) {
			t.Errorf("session cookie %q lacks %s", ses, want)
		}
	}
	if strings.Contains(ses, adminToken) {
		t.Fatalf("the session cookie holds the admin token: %q", ses)
	}
	resp, page = w.do(c, "GET", "/", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, "The Smiths") || !strings.Contains(page, "1.2.3-test") ||
		!strings.Contains(page, `<td class="num messages">2</td>`) {
		t.Fatalf("homes page: %d\n%s", resp.StatusCode, page)
	}
	if n := testutil.ToFloat64(w.c.refused.WithLabelValues(RefusedBadToken)); n != 1 {
		t.Fatalf("refused bad_token = %v, want 1", n)
	}
	if !strings.Contains(w.log.String(), fleet.AuditLogin) || !strings.Contains(w.log.String(), fleet.AuditLoginFailed) {
		t.Fatalf("log lacks the login audit lines:\n%s", w.log.String())
	}
	w.advance(13 * time.Hour)
	if resp, _ := w.do(c, "GET", "/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET / after the session expired: %d, want 303", resp.StatusCode)
	}
}

// Ensure that a login form without the login cookie's token is refused:
// another site's page cannot log a browser in.
func TestConsole_LoginCSRF(t *testing.T) {
	w := newWorld(t)
	resp, _ := w.do(w.browser(), "POST", "/login", url.Values{"csrf": {"forged"}, "token": {adminToken}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("login without the form's token: %d, want 403", resp.StatusCode)
	}
	if n := testutil.ToFloat64(w.c.refused.WithLabelValues(RefusedBadCSRF)); n != 1 {
		t.Fatalf("refused bad_csrf = %v", n)
	}
}

// Ensure that an address that failed too often is refused, even with the
// right token, until the window passes.
func TestConsole_LoginThrottled(t *testing.T) {
	w := newWorld(t)
	c := w.browser()
	for range loginLimit {
		_, page := w.do(c, "GET", "/login", nil)
		w.do(c, "POST", "/login", url.Values{"csrf": {csrfField.FindStringSubmatch(page)[1]}, "token": {"guess"}})
	}
	_, page := w.do(c, "GET", "/login", nil)
	resp, _ := w.do(c, "POST", "/login", url.Values{"csrf": {csrfField.FindStringSubmatch(page)[1]}, "token": {adminToken}})
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("login after %d failures: %d, want 429 with Retry-After", loginLimit, resp.StatusCode)
	}
	if resp, _ := w.do(c, "GET", "/", nil, "Authorization", "Bearer "+adminToken); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("bearer from a throttled address: %d, want 429", resp.StatusCode)
	}
	if n := testutil.ToFloat64(w.c.refused.WithLabelValues(RefusedThrottled)); n != 2 {
		t.Fatalf("refused throttled = %v, want 2", n)
	}
	w.advance(loginWindow)
	w.login(c)
}

// Ensure that an action without the session's CSRF token is refused and
// with it runs, audited.
func TestConsole_ActionsNeedCSRF(t *testing.T) {
	w := newWorld(t)
	c := w.browser()
	csrf := w.login(c)
	resp, _ := w.do(c, "POST", "/homes/"+w.home+"/revoke", url.Values{})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("revoke without CSRF: %d, want 403", resp.StatusCode)
	}
	if _, err := w.st.HomeByToken(context.Background(), w.token); err != nil {
		t.Fatalf("the refused revoke revoked: %v", err)
	}
	resp, page := w.do(c, "POST", "/homes/"+w.home+"/rotate-token", url.Values{"csrf": {csrf}, "grace": {"0"}})
	tok := regexp.MustCompile(`<pre id="token">([^<]+)</pre>`).FindStringSubmatch(page)
	if resp.StatusCode != 200 || tok == nil {
		t.Fatalf("rotate: %d\n%s", resp.StatusCode, page)
	}
	if _, err := w.st.HomeByToken(context.Background(), w.token); err == nil {
		t.Fatal("the old token works after a rotation without grace")
	}
	if _, err := w.st.HomeByToken(context.Background(), tok[1]); err != nil {
		t.Fatalf("the new token: %v", err)
	}
	resp, _ = w.do(c, "POST", "/homes/"+w.home+"/remove", url.Values{"csrf": {csrf}})
	if resp.StatusCode != http.StatusBadRequest || testutil.ToFloat64(w.c.refused.WithLabelValues(RefusedNotConfirmed)) != 1 {
		t.Fatalf("remove without confirm: %d, want 400, counted", resp.StatusCode)
	}
	if testutil.ToFloat64(w.c.refused.WithLabelValues(RefusedBadCSRF)) != 1 {
		t.Fatal("the POST without CSRF token is not counted")
	}
	if !strings.Contains(w.log.String(), fleet.AuditRotate) || !strings.Contains(w.log.String(), "actor=console:127.0.0.1") {
		t.Fatalf("no audit line for the rotation:\n%s", w.log.String())
	}
	resp, _ = w.do(c, "POST", "/logout", url.Values{"csrf": {csrf}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ := w.do(c, "GET", "/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET / after logout: %d, want 303", resp.StatusCode)
	}
}

// Ensure that scripts use the admin token as a bearer token, get JSON
// from actions, and a wrong token is 401.
func TestConsole_Bearer(t *testing.T) {
	w := newWorld(t)
	c := w.browser()
	if resp, _ := w.do(c, "GET", "/", nil, "Authorization", "Bearer nope"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong bearer: %d", resp.StatusCode)
	}
	resp, page := w.do(c, "GET", "/homes/"+w.home, nil, "Authorization", "Bearer "+adminToken)
	if resp.StatusCode != 200 || !strings.Contains(page, "Ada &lt;b&gt;") {
		t.Fatalf("home page by bearer: %d\n%s", resp.StatusCode, page)
	}
	resp, page = w.do(c, "POST", "/homes/"+w.home+"/rotate-token", url.Values{"grace": {"1h"}}, "Authorization", "Bearer "+adminToken)
	var got map[string]string
	if resp.StatusCode != 200 || json.Unmarshal([]byte(page), &got) != nil || len(got["token"]) < 32 {
		t.Fatalf("rotate by bearer: %d %s", resp.StatusCode, page)
	}
	if _, err := w.st.HomeByGraceToken(context.Background(), w.token); err != nil {
		t.Fatalf("old token within the grace chosen: %v", err)
	}
}

// Ensure that a child's page shows its data and that viewing it is
// written to the audit log with who and which child.
func TestConsole_ChildPageAudited(t *testing.T) {
	w := newWorld(t)
	c := w.browser()
	w.login(c)
	resp, page := w.do(c, "GET", "/children/"+w.child, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("child page: %d\n%s", resp.StatusCode, page)
	}
	for _, want := range []string{"Ada &lt;b&gt;", "1h 30m", "com.video", "51.50000", "<svg"} {
		if !strings.Contains(page, want) {
			t.Errorf("child page lacks %q", want)
		}
	}
	line := ""
	for _, l := range strings.Split(w.log.String(), "\n") {
		if strings.Contains(l, fleet.AuditViewChild) {
			line = l
		}
	}
	if !strings.Contains(line, "child="+w.child) || !strings.Contains(line, "actor=console:127.0.0.1") || !strings.Contains(line, "home="+w.home) {
		t.Fatalf("audit line %q, want the child, home and actor", line)
	}
	if resp, _ := w.do(c, "GET", "/children/nobody", nil); resp.StatusCode != 404 {
		t.Fatalf("unknown child: %d", resp.StatusCode)
	}
}

// Ensure that a child removed without its data leaves its home's page,
// keeps its data on its own page, which then offers to erase it, and that
// the erase needs the confirmation and deletes it; all audited.
func TestConsole_DetachThenErase(t *testing.T) {
	w := newWorld(t)
	c := w.browser()
	csrf := w.login(c)
	resp, page := w.do(c, "POST", "/homes/"+w.home+"/children/"+w.child+"/remove", url.Values{"csrf": {csrf}})
	if resp.StatusCode != 200 || !strings.Contains(page, "its data stays") || !strings.Contains(page, `href="/children/`+w.child+`"`) {
		t.Fatalf("detach: %d\n%s", resp.StatusCode, page)
	}
	if _, page := w.do(c, "GET", "/homes/"+w.home, nil); strings.Contains(page, "/children/"+w.child) {
		t.Fatalf("home page still lists the detached child:\n%s", page)
	}
	resp, page = w.do(c, "GET", "/children/"+w.child, nil)
	if resp.StatusCode != 200 || !strings.Contains(page, "in no home") || !strings.Contains(page, "51.50000") ||
		!strings.Contains(page, `action="/children/`+w.child+`/erase"`) {
		t.Fatalf("detached child's page: %d\n%s", resp.StatusCode, page)
	}
	resp, _ = w.do(c, "POST", "/children/"+w.child+"/erase", url.Values{"csrf": {csrf}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("erase without confirm: %d, want 400", resp.StatusCode)
	}
	resp, page = w.do(c, "POST", "/children/"+w.child+"/erase", url.Values{"confirm": {"yes"}}, "Authorization", "Bearer "+adminToken)
	if resp.StatusCode != 200 || !strings.Contains(page, `"ok":true`) || !strings.Contains(page, "4 rows erased") {
		t.Fatalf("erase of the detached child: %d %s", resp.StatusCode, page)
	}
	if resp, _ := w.do(c, "GET", "/children/"+w.child, nil); resp.StatusCode != 404 {
		t.Fatalf("erased child's page: %d, want 404", resp.StatusCode)
	}
	resp, _ = w.do(c, "POST", "/children/"+w.child+"/erase", url.Values{"csrf": {csrf}, "confirm": {"yes"}})
	if resp.StatusCode != 404 {
		t.Fatalf("erasing again: %d, want 404", resp.StatusCode)
	}
	if l := w.log.String(); !strings.Contains(l, fleet.AuditDetachChild) || !strings.Contains(l, fleet.AuditEraseChild) {
		t.Fatalf("audit lines:\n%s", l)
	}
}

// Ensure that without an admin token the console is closed, saying why.
func TestConsole_Off(t *testing.T) {
	w := newWorld(t)
	w.c.o.IsAdmin = nil
	resp, page := w.do(w.browser(), "GET", "/login", nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "admin_token_file") ||
		testutil.ToFloat64(w.c.refused.WithLabelValues(RefusedConsoleOff)) != 1 {
		t.Fatalf("console without an admin token: %d %q", resp.StatusCode, page)
	}
}

// sessionsDown is a store whose console sessions cannot be read.
type sessionsDown struct{ store.Store }

func (sessionsDown) ConsoleSession(context.Context, string, time.Time) (store.ConsoleSession, error) {
	return store.ConsoleSession{}, fmt.Errorf("read console session: %w", store.ErrUnavailable)
}

// Ensure that a browser whose session cannot be looked up, the database
// being unavailable, is told to retry (503 with Retry-After), not sent to
// log in again.
func TestConsole_SessionStoreDown(t *testing.T) {
	w := newWorld(t)
	c := w.browser()
	w.login(c)
	w.c.sessions.st = sessionsDown{w.st}
	resp, page := w.do(c, "GET", "/", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(page, "database is unavailable") {
		t.Fatalf("session lookup with the database down: %d %q, want 503 with Retry-After", resp.StatusCode, page)
	}
}
