package forwarder

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guardianai/hearth/central"
	"github.com/guardianai/hearth/central/store"
	"github.com/guardianai/hearth/internal/testutil"
)

// Ensure that a plain http:// central on another host is refused unless
// allowed, that loopback is always fine, and that a CA file only goes
// with https://.
func TestConfig_Validate_TLS(t *testing.T) {
	for _, tc := range []struct {
		url      string
		insecure bool
		ca       string
		want     string // "" = valid
	}{
		{"https://central.example", false, "", ""},
		{"https://central.example:8443", false, "/etc/hearth/ca.pem", ""},
		{"http://127.0.0.1:8080", false, "", ""},
		{"http://127.1.2.3:8080", false, "", ""},
		{"http://localhost:8080", false, "", ""},
		{"http://[::1]:8080", false, "", ""},
		{"http://central.example:8080", false, "", "central_insecure: true"},
		{"http://192.168.1.10:8080", false, "", "unencrypted"},
		{"http://central.example:8080", true, "", ""},
		{"http://127.0.0.1:8080", false, "/etc/hearth/ca.pem", "central_ca_file"},
	} {
		err := Config{URL: tc.url, Token: "tok", Insecure: tc.insecure, CAFile: tc.ca}.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s (insecure %v, ca %q): %v, want %q", tc.url, tc.insecure, tc.ca, err, tc.want)
		}
	}
}

// Ensure that a CA file that cannot be read or holds no certificate stops
// the forwarder's start with a reason.
func TestNew_BadCAFile(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{filepath.Join(dir, "missing.pem"): "no such file", garbage: "no PEM certificate"} {
		_, err := New(Config{URL: "https://127.0.0.1:1", Token: "tok", CAFile: file}, openOutbox(t), nil, nil, quiet)
		if err == nil || !strings.Contains(err.Error(), "central_ca_file") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", file, err, want)
		}
	}
}

// startTLSCentral runs a real hearth-central serving TLS with a
// certificate of ca; it returns its https:// URL, a home token, a child
// and a store handle for counting rows.
func startTLSCentral(t *testing.T, ca *testutil.CA) (url, token, child string, stats store.Store) {
	t.Helper()
	cfg := central.DefaultConfig()
	cfg.Listen, cfg.AdminListen, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	cfg.TLSCertFile, cfg.TLSKeyFile = ca.WriteLeaf(t, t.TempDir(), "central")
	ctx := context.Background()
	st, err := store.OpenWith(ctx, cfg.DSN(), central.StoreOptions(cfg))
	if err != nil {
		t.Fatal(err)
	}
	home, token, _ := st.AddHome(ctx, "A")
	child, _ = st.AddChild(ctx, home, "")
	srv, err := central.New(cfg, st, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	stats, err = store.OpenWith(ctx, cfg.DSN(), central.StoreOptions(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stats.Close() })
	return "https://" + srv.Addr(), token, child, stats
}

// Ensure that the forwarder delivers over TLS to a central whose
// certificate its CA file vouches for, and that without that CA it
// refuses the certificate, keeps everything and says why.
func TestForward_TLS(t *testing.T) {
	ca := testutil.NewCA(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	testutil.WriteFile(t, caFile, ca.PEM, 0o644)
	url, token, child, stats := startTLSCentral(t, ca)

	untrusting := openOutbox(t)
	appendMsgs(t, untrusting, locations(child, 0, 3)...)
	f := runForwarder(t, untrusting, url, token, nil, nil)
	testutil.WaitFor(t, 10*time.Second, func() error {
		if e := f.Status().LastError; !strings.Contains(e, "certificate") {
			return errors.New("last error: " + e)
		}
		return nil
	})
	if d := untrusting.Stats().Depth; d != 3 {
		t.Fatalf("an untrusted central took messages: depth %d", d)
	}

	ob := openOutbox(t)
	appendMsgs(t, ob, locations(child, 10, 5)...)
	runForwarder(t, ob, url, token, nil, func(c *Config) { c.CAFile = caFile })
	testutil.WaitFor(t, 10*time.Second, func() error {
		n, err := stats.Stats(context.Background())
		if err != nil {
			return err
		}
		if n["locations"] != 5 || ob.Stats().Depth != 0 {
			return errors.New("not all delivered over TLS yet")
		}
		return nil
	})
}
