package central

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/store"
	"github.com/guardianai/hearth/internal/testutil"
)

// do sends a request with a bearer token ("" for none) through client
// (nil: the default) and returns the status and body.
func do(t *testing.T, client *http.Client, method, url, token string, body []byte) (int, string) {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// locationsPath is the read API's path of child's locations over the last day.
func locationsPath(child string) string {
	now := time.Now().UTC()
	return PathChildren + child + "/locations?from=" + now.Add(-24*time.Hour).Format(time.RFC3339) + "&to=" + now.Add(time.Hour).Format(time.RFC3339)
}

const testAdminToken = "operator-admin-token-0123456789"

// Ensure that a home token may not read (403 with a reason), that a reader
// token reads its own home's children only and can neither send batches
// nor fetch a roster, and that each refusal is counted with its reason.
func TestServer_ReadAPI_LeastPrivilege(t *testing.T) {
	ts := startTestServer(t, func(c *Config) { c.AdminToken = testAdminToken })
	ctx := context.Background()
	_, readerA, err := ts.store.AddReader(ctx, ts.homeOf(t, ts.child))
	if err != nil {
		t.Fatal(err)
	}
	homeB, tokB, _ := ts.store.AddHome(ctx, "B")
	childB, _ := ts.store.AddChild(ctx, homeB, "")
	now := time.Now().UTC()
	body := fmt.Sprintf(`{"edge_id":"e","sent_at":%q,"messages":[%s]}`, now.Format(time.RFC3339Nano), location(1, ts.child, now))
	if code, reply, _ := ts.post(t, []byte(body), nil); code != 200 || !strings.Contains(reply, `"ok"`) {
		t.Fatalf("home token batch: %d %s", code, reply)
	}

	code, reply := do(t, nil, "GET", ts.url+locationsPath(ts.child), readerA, nil)
	if code != 200 || !strings.Contains(reply, `"latitude":1`) {
		t.Fatalf("reader token, own child: %d %s", code, reply)
	}
	if code, _ := do(t, nil, "GET", ts.url+locationsPath(ts.child), testAdminToken, nil); code != 200 {
		t.Fatalf("admin token: %d", code)
	}
	for _, tc := range []struct {
		name, method, path, token string
		body                      []byte
		code                      int
		reason                    string
	}{
		{"home token reads its own child", "GET", locationsPath(ts.child), ts.token, nil, 403, "a home token may only send batches and fetch its roster"},
		{"home token reads another's child", "GET", locationsPath(childB), tokB, nil, 403, "a home token may only send batches"},
		{"reader token, other home's child", "GET", locationsPath(childB), readerA, nil, 403, "only its own home's children"},
		{"reader token, unknown child", "GET", locationsPath("nobody"), readerA, nil, 403, "only its own home's children"},
		{"admin token, unknown child", "GET", locationsPath("nobody"), testAdminToken, nil, 404, "unknown child"},
		{"no token", "GET", locationsPath(ts.child), "", nil, 401, "missing bearer token"},
		{"unknown token", "GET", locationsPath(ts.child), "guess-guess-guess", nil, 401, "unknown token"},
		{"reader token sends a batch", "POST", hearth.PathEdgeBatches, readerA, []byte(body), 403, "reader token may only read"},
		{"reader token fetches a roster", "GET", hearth.PathEdgeRoster, readerA, nil, 403, "reader token may only read"},
	} {
		code, reply := do(t, nil, tc.method, ts.url+tc.path, tc.token, tc.body)
		var e struct{ Error string }
		if err := json.Unmarshal([]byte(reply), &e); err != nil || code != tc.code || e.Error == "" || !strings.Contains(e.Error, tc.reason) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, code, reply, tc.code, tc.reason)
		}
	}
	if n, _ := ts.store.Stats(ctx); n["locations"] != 1 {
		t.Fatalf("a refused batch stored something: %v", n)
	}
	_, metrics := httpGet(t, ts.admin+"/metrics")
	for _, want := range []string{
		`hearth_central_read_refused_total{reason="home_token"} 2`,
		`hearth_central_read_refused_total{reason="foreign_child"} 2`,
		`hearth_central_read_refused_total{reason="unknown_child"} 1`,
		`hearth_central_read_refused_total{reason="missing_token"} 1`,
		`hearth_central_read_refused_total{reason="unknown_token"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, testutil.GrepLines(metrics, "read_refused"))
		}
	}
}

// homeOf is the home of a child, for tests.
func (ts *testServer) homeOf(t *testing.T, child string) string {
	t.Helper()
	home, ok, err := ts.store.ChildHome(context.Background(), child)
	if err != nil || !ok {
		t.Fatalf("home of %s: %v %v", child, ok, err)
	}
	return home
}

// newTestConfig is a configuration on loopback ports and a fresh SQLite
// file.
func newTestConfig(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.Listen, cfg.AdminListen, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	return cfg
}

// startWith starts a Server on cfg and st logging to log; st may wrap the
// store of cfg (nil: open it).
func startWith(t *testing.T, cfg Config, st store.Store, log *slog.Logger) *Server {
	t.Helper()
	if st == nil {
		var err error
		if st, err = store.OpenWith(context.Background(), cfg.DSN(), StoreOptions(cfg)); err != nil {
			t.Fatal(err)
		}
	}
	s, err := New(cfg, st, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

// waitReady polls /readyz until its status is code and its body holds want.
func waitReady(t *testing.T, admin string, code int, want string) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if c, body := httpGet(t, admin+"/readyz"); c != code || !strings.Contains(body, want) {
			return fmt.Errorf("/readyz %d %q, want %d with %q", c, body, code, want)
		}
		return nil
	})
}

// Ensure that a listener closed under the running server makes /readyz
// fail with the reason, and that the stop is logged and counted.
func TestServer_Ready_ListenerClosed(t *testing.T) {
	var logs testutil.SyncBuffer
	s := startWith(t, newTestConfig(t), nil, slog.New(slog.NewTextHandler(&logs, nil)))
	admin := "http://" + s.AdminAddr()
	waitReady(t, admin, 200, "ready")
	s.pubLn.Close()
	waitReady(t, admin, 503, "public listener "+s.Addr()+" stopped serving")
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "stopped serving") {
		t.Errorf("the stop is not logged at ERROR:\n%s", l)
	}
	_, metrics := httpGet(t, admin+"/metrics")
	for _, want := range []string{`hearth_central_listener_up{listener="public"} 0`, `hearth_central_listener_up{listener="admin"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, testutil.GrepLines(metrics, "listener_up"))
		}
	}
}

// failingWrites is the real store whose write probe fails while fail is set.
type failingWrites struct {
	store.Store
	fail atomic.Pointer[string]
}

func (f *failingWrites) ProbeWrite(ctx context.Context) error {
	if why := f.fail.Load(); why != nil {
		return fmt.Errorf("%w: %s", store.ErrUnavailable, *why)
	}
	return f.Store.ProbeWrite(ctx)
}

// Ensure that a database that cannot be written makes /readyz fail with
// the reason from the start, logged at ERROR, and that readiness comes
// back by itself once writes succeed again.
func TestServer_Ready_DatabaseNotWritable(t *testing.T) {
	cfg := newTestConfig(t)
	cfg.DBProbeInterval = 10 * time.Millisecond
	real, err := store.OpenWith(context.Background(), cfg.DSN(), StoreOptions(cfg))
	if err != nil {
		t.Fatal(err)
	}
	st := &failingWrites{Store: real}
	full := "database or disk is full"
	st.fail.Store(&full)
	var logs testutil.SyncBuffer
	s := startWith(t, cfg, st, slog.New(slog.NewTextHandler(&logs, nil)))
	admin := "http://" + s.AdminAddr()
	if code, body := httpGet(t, admin+"/readyz"); code != 503 || !strings.Contains(body, "the database cannot be written") || !strings.Contains(body, full) {
		t.Fatalf("/readyz right after Start: %d %q", code, body)
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "DATABASE NOT WRITABLE") {
		t.Errorf("not logged loudly:\n%s", l)
	}
	if _, metrics := httpGet(t, admin+"/metrics"); !strings.Contains(metrics, "hearth_central_db_writable 0") {
		t.Errorf("metrics: %s", testutil.GrepLines(metrics, "db_writable"))
	}
	st.fail.Store(nil)
	waitReady(t, admin, 200, "ready")
	// The probe logs the recovery just after it made /readyz answer 200.
	testutil.WaitFor(t, 5*time.Second, func() error {
		if !strings.Contains(logs.String(), "takes writes again") {
			return errors.New("recovery not logged")
		}
		return nil
	})
	if l := logs.String(); strings.Count(l, "DATABASE NOT WRITABLE") != 1 {
		t.Errorf("the failure logged at every probe:\n%s", l)
	}
}

// tlsClient trusts only ca.
func tlsClient(ca *testutil.CA) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
}

// servedCN opens a fresh TLS connection to addr and returns the common
// name of the certificate served.
func servedCN(t *testing.T, addr string, ca *testutil.CA) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// Ensure that central serves its public listener over TLS (edge API and
// phones' WebSockets through the hijacked TLS connection), and that a
// reload swaps the certificate for new connections without dropping open
// ones, while a reload that fails keeps the previous certificate.
func TestServer_TLS_ServeAndReload(t *testing.T) {
	ca := testutil.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.WriteLeaf(t, dir, "central-1")
	ts := startTestServer(t, func(c *Config) { c.TLSCertFile, c.TLSKeyFile = certFile, keyFile })
	base := "https://" + ts.Addr()
	client := tlsClient(ca)
	if code, body := do(t, client, "GET", base+hearth.PathEdgeRoster, ts.token, nil); code != 200 || !strings.Contains(body, ts.child) {
		t.Fatalf("roster over TLS: %d %s", code, body)
	}
	if _, err := http.Get(base + hearth.PathEdgeRoster); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client that does not trust the CA: %v", err)
	}
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial("wss://"+ts.Addr()+"/ws/ingest/"+ts.child+"/", nil)
	if err != nil {
		t.Fatalf("WebSocket over TLS: %v", err)
	}
	defer ws.Close()
	expectWS(t, ws, "connection_established")
	sendLocation(t, ws, 1)

	if cn := servedCN(t, ts.Addr(), ca); cn != "central-1" {
		t.Fatalf("served %q", cn)
	}
	ca.WriteLeaf(t, dir, "central-2")
	if err := ts.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if cn := servedCN(t, ts.Addr(), ca); cn != "central-2" {
		t.Fatalf("after reload, served %q, want central-2", cn)
	}
	sendLocation(t, ws, 2) // the WebSocket opened before the reload still works
	if code, _ := do(t, client, "GET", base+hearth.PathEdgeRoster, ts.token, nil); code != 200 {
		t.Fatalf("roster after reload: %d", code)
	}

	testutil.WriteFile(t, certFile, []byte("half a renewal"), 0o644)
	if err := ts.ReloadTLS(); err == nil || !strings.Contains(err.Error(), certFile) {
		t.Fatalf("reload of a broken certificate: %v", err)
	}
	if cn := servedCN(t, ts.Addr(), ca); cn != "central-2" {
		t.Fatalf("after a failed reload, served %q, want the previous central-2", cn)
	}
	_, metrics := httpGet(t, ts.admin+"/metrics")
	for _, want := range []string{`hearth_central_tls_reloads_total{result="ok"} 1`, `hearth_central_tls_reloads_total{result="error"} 1`,
		`hearth_central_tls_cert_not_after_timestamp_seconds `} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func expectWS(t *testing.T, ws *websocket.Conn, typ string) map[string]any {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m map[string]any
	if err := ws.ReadJSON(&m); err != nil || m["type"] != typ {
		t.Fatalf("WebSocket reply %v, %v; want %s", m, err, typ)
	}
	return m
}

func sendLocation(t *testing.T, ws *websocket.Conn, n int) {
	t.Helper()
	ts := time.Now().UTC().Add(-time.Duration(n) * time.Second).Format(time.RFC3339Nano)
	frame := fmt.Sprintf(`{"type":"location","data":{"timestamp":%q,"latitude":1,"longitude":2}}`, ts)
	if err := ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		t.Fatal(err)
	}
	expectWS(t, ws, "ack")
}

// Ensure that a certificate pair that does not load, or only half a pair,
// stops the start with a reason.
func TestServer_TLS_BadConfig(t *testing.T) {
	cfg := newTestConfig(t)
	cfg.TLSCertFile = filepath.Join(t.TempDir(), "missing.pem")
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "set both") {
		t.Fatalf("cert without key: %v", err)
	}
	cfg.TLSKeyFile = cfg.TLSCertFile
	if err := CheckTLS(cfg); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Fatalf("missing files: %v", err)
	}
	st, err := store.OpenWith(context.Background(), cfg.DSN(), StoreOptions(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := New(cfg, st, nil); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Fatalf("New with missing files: %v", err)
	}
}

// Ensure that admin_token_file is read (newline trimmed) and works on the
// read API, and that a world-readable file or a token set twice stops the
// start with a reason.
func TestServer_AdminTokenFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "admin-token")
	testutil.WriteFile(t, file, []byte("operator-admin-token-from-file\n"), 0o644)
	cfg := newTestConfig(t)
	cfg.AdminTokenFile = file
	if err := cfg.LoadSecrets(); err == nil || !strings.Contains(err.Error(), "readable or writable by every user") {
		t.Fatalf("world-readable token file: %v", err)
	}
	both := cfg
	both.AdminToken = testAdminToken
	if err := os.Chmod(file, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := both.LoadSecrets(); err == nil || !strings.Contains(err.Error(), "both set") {
		t.Fatalf("token set twice: %v", err)
	}
	ts := startTestServer(t, func(c *Config) { c.AdminTokenFile = file })
	if code, body := do(t, nil, "GET", ts.url+locationsPath(ts.child), "operator-admin-token-from-file", nil); code != 200 {
		t.Fatalf("admin token from the file: %d %s", code, body)
	}
}

// Ensure that Go's profiles are off on central's admin listener unless
// pprof is set.
func TestServer_Pprof(t *testing.T) {
	off := startTestServer(t, nil)
	if code, body := httpGet(t, off.admin+"/debug/pprof/"); code != 404 || !strings.Contains(body, "--pprof") {
		t.Fatalf("pprof off: %d %q", code, body)
	}
	on := startTestServer(t, func(c *Config) { c.Pprof = true })
	if code, _ := httpGet(t, on.admin+"/debug/pprof/goroutine?debug=1"); code != 200 {
		t.Fatalf("pprof on: %d", code)
	}
	if code, _ := httpGet(t, on.admin+"/debug/pprof/cmdline"); code != 403 {
		t.Fatalf("cmdline: %d", code)
	}
}
