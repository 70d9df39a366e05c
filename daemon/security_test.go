package daemon

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guardianai/hearth/internal/admin"
	"github.com/guardianai/hearth/internal/testutil"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Ensure that the phones' listener closed under the running daemon makes
// /readyz fail with the reason, counted in hearth_listener_up.
func TestDaemon_Ready_ListenerClosed(t *testing.T) {
	d := startDaemon(t, "", nil)
	admin := "http://" + d.AdminAddr()
	if code, body := get(t, admin+"/readyz"); code != 200 {
		t.Fatalf("/readyz %d %s", code, body)
	}
	d.pubLn.Close()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if code, body := get(t, admin+"/readyz"); code != 503 || !strings.Contains(body, "public listener "+d.Addr()+" stopped serving") {
			return &readyErr{code, body}
		}
		return nil
	})
	if _, m := get(t, admin+"/metrics"); !strings.Contains(m, `hearth_listener_up{listener="public"} 0`) || !strings.Contains(m, `hearth_listener_up{listener="admin"} 1`) {
		t.Errorf("metrics: %s", testutil.GrepLines(m, "listener_up"))
	}
	if st := status(t, d); st["ready"] != false {
		t.Errorf("/status says ready = %v while /readyz fails", st["ready"])
	}
}

type readyErr struct {
	code int
	body string
}

func (e *readyErr) Error() string { return "/readyz " + http.StatusText(e.code) + ": " + e.body }

// Ensure that central_token_file is read (newline trimmed) and used, that
// a file every user can read or a token set twice is refused, and that
// --check-config shows the file, never the token.
func TestConfig_CentralTokenFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "central-token")
	testutil.WriteFile(t, file, []byte("home-token-from-a-file-0123456789\n"), 0o640)
	cfg := DefaultConfig()
	cfg.CentralURL, cfg.CentralTokenFile = "https://central.example", file
	if err := cfg.LoadSecrets(); err != nil || cfg.CentralToken != "home-token-from-a-file-0123456789" {
		t.Fatalf("LoadSecrets: %q, %v", cfg.CentralToken, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if err := cfg.LoadSecrets(); err != nil {
		t.Fatalf("LoadSecrets again: %v", err)
	}
	var out bytes.Buffer
	cfg.Write(&out)
	if !strings.Contains(out.String(), "central_token_file: "+file) || strings.Contains(out.String(), "from-a-file") {
		t.Fatalf("--check-config output:\n%s", out.String())
	}
	both := DefaultConfig()
	both.CentralToken, both.CentralTokenFile = "tok", file
	if err := both.LoadSecrets(); err == nil || !strings.Contains(err.Error(), "both set") {
		t.Fatalf("token set twice: %v", err)
	}
	testutil.WriteFile(t, file, []byte("home-token\n"), 0o644)
	open := DefaultConfig()
	open.CentralTokenFile = file
	if err := open.LoadSecrets(); err == nil || !strings.Contains(err.Error(), "central_token_file") || !strings.Contains(err.Error(), "every user") {
		t.Fatalf("world-readable token file: %v", err)
	}
}

// Ensure that the edge refuses a plain http:// central on another host
// unless central_insecure is set, and that a central_ca_file that does not
// load stops the start.
func TestConfig_CentralTLS(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir, cfg.AllowVolatileDataDir = t.TempDir(), true // t.TempDir() may be on tmpfs
	cfg.CentralURL, cfg.CentralToken = "http://central.example:8080", "tok"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "central_insecure: true") {
		t.Fatalf("plain http to another host: %v", err)
	}
	cfg.CentralInsecure = true
	if err := cfg.Validate(); err != nil {
		t.Fatalf("with central_insecure: %v", err)
	}
	cfg.CentralInsecure, cfg.CentralURL = false, "https://central.example"
	cfg.CentralCAFile = filepath.Join(t.TempDir(), "missing-ca.pem")
	if _, err := New(cfg, quiet); err == nil || !strings.Contains(err.Error(), "central_ca_file") {
		t.Fatalf("missing CA file: %v", err)
	}
}

// Ensure that Go's profiles are off on hearthd's admin listener unless
// pprof is set.
func TestDaemon_Pprof(t *testing.T) {
	if !admin.PprofBuilt {
		t.Skip("SKIPPED: built with -tags nopprof (TestConfig_Pprof_NotBuilt covers it)")
	}
	off := startDaemon(t, "", nil)
	if code, body := get(t, "http://"+off.AdminAddr()+"/debug/pprof/"); code != 404 || !strings.Contains(body, "--pprof") {
		t.Fatalf("pprof off: %d %q", code, body)
	}
	on := startDaemon(t, "", func(c *Config) { c.Pprof = true })
	if code, _ := get(t, "http://"+on.AdminAddr()+"/debug/pprof/goroutine?debug=1"); code != 200 {
		t.Fatalf("pprof on: %d", code)
	}
}
