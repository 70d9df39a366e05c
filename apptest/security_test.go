package apptest

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guardianai/hearth/ingest/ingesttest"
	"github.com/guardianai/hearth/internal/testutil"
)

// writeSecret writes a token file as an operator should: private, with
// the trailing newline of `echo`.
func writeSecret(t *testing.T, name, token string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), name)
	testutil.WriteFile(t, file, []byte(token+"\n"), 0o640)
	return file
}

// phoneLocations has a phone send n locations through the edge d as child,
// each acked.
func phoneLocations(t *testing.T, d *Hearthd, child string, from, n int) {
	t.Helper()
	conn := ingesttest.MustDial(t, ingesttest.Target{URL: d.URL}, "/ws/ingest/"+child+"/")
	conn.Expect("connection_established")
	base := time.Now().Add(-time.Hour)
	for i := from; i < from+n; i++ {
		ts := base.Add(time.Duration(i) * time.Millisecond).UTC().Format(time.RFC3339Nano)
		conn.Send(ingesttest.Frame("location", fmt.Sprintf(`{"timestamp":%q,"latitude":51.5,"longitude":-0.12}`, ts)))
		conn.ExpectAck("location")
	}
}

// waitCentralHolds waits until central holds n locations and the edge's
// outbox is empty.
func waitCentralHolds(t *testing.T, c *Central, d *Hearthd, n int64) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, func() error {
		if got := CentralStats(t, c.DB)["locations"]; got != n {
			return fmt.Errorf("central holds %d locations, want %d; edge status %v", got, n, getStatus(t, d))
		}
		if depth := statusNumber(t, d, "outbox_depth"); depth != 0 {
			return fmt.Errorf("outbox depth %v", depth)
		}
		return nil
	})
}

// Ensure that no debug or status endpoint of either server, started with
// tokens from files (central's through the environment, the edge's by a
// flag naming the file) and with profiles on, serves a token, and that
// neither logs one.
func TestSecrets_NotServed(t *testing.T) {
	db := CentralSQLite(t)
	home, homeTok := CentralAddHome(t, db, "secrets")
	child := CentralAddChild(t, db, home, "")
	reader := CentralAddReader(t, db, home)
	const adminTok = "operator-secret-admin-token-0123456789"
	t.Setenv("HEARTH_ADMIN_TOKEN_FILE", writeSecret(t, "admin-token", adminTok))
	c := StartCentral(t, db, "--pprof")
	d := StartHearthd(t, t.TempDir(), "--central-url", c.URL, "--central-token-file", writeSecret(t, "central-token", homeTok),
		"--pprof", "--forward-replay-jitter", "0s", "--forward-max-backoff", "500ms", "--edge-id", "secrets-edge")
	// Use every token once, so that each has been through the code that
	// might leak it.
	phoneLocations(t, d, child, 0, 3)
	waitCentralHolds(t, c, d, 3)
	if n := len(c.readLocations(t, adminTok, child)); n != 3 {
		t.Fatalf("admin read %d locations", n)
	}
	if n := len(c.readLocations(t, reader, child)); n != 3 {
		t.Fatalf("reader read %d locations", n)
	}

	paths := []string{"/metrics", "/readyz", "/healthz", "/debug/pprof/", "/debug/pprof/cmdline",
		"/debug/pprof/goroutine?debug=1", "/debug/pprof/goroutine?debug=2", "/debug/pprof/heap?debug=1",
		"/debug/pprof/allocs?debug=1", "/debug/pprof/block?debug=1", "/debug/pprof/mutex?debug=1",
		"/debug/pprof/threadcreate?debug=1", "/debug/pprof/symbol", "/debug/pprof/heap",
		"/debug/pprof/profile?seconds=1", "/debug/pprof/trace?seconds=1"}
	for name, base := range map[string]string{"hearth-central": c.Admin, "hearthd": d.Admin} {
		ps := paths
		if name == "hearthd" {
			ps = append(ps, "/status")
		}
		for _, p := range ps {
			code, body := get(t, base+p)
			if want := map[bool]int{true: 403, false: 200}[p == "/debug/pprof/cmdline"]; code != want {
				t.Errorf("%s %s: status %d, want %d", name, p, code, want)
			}
			for _, secret := range []string{adminTok, homeTok, reader} {
				if strings.Contains(body, secret) {
					t.Errorf("%s %s serves a token", name, p)
				}
			}
		}
	}
	for name, log := range map[string]string{"hearth-central": c.Log(), "hearthd": d.Log()} {
		for _, secret := range []string{adminTok, homeTok, reader} {
			if strings.Contains(log, secret) {
				t.Errorf("%s logged a token", name)
			}
		}
	}
}

// servedCN opens a fresh TLS connection to addr trusting pool and returns
// the common name of the certificate served.
func servedCN(addr string, ca *testutil.CA) (string, error) {
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

// Ensure that an edge forwards to central over TLS end to end, verifying
// central's certificate against central_ca_file; that SIGHUP makes central
// serve a renewed certificate without a restart, the edge forwarding on;
// and that an edge that does not trust the certificate refuses it.
func TestCentral_TLS_EdgeToCentral(t *testing.T) {
	ca := testutil.NewCA(t)
	certDir := t.TempDir()
	certFile, keyFile := ca.WriteLeaf(t, certDir, "central-1")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	testutil.WriteFile(t, caFile, ca.PEM, 0o644)
	db := CentralSQLite(t)
	home, tok := CentralAddHome(t, db, "tls")
	child := CentralAddChild(t, db, home, "")
	c := StartCentral(t, db, "--tls-cert-file", certFile, "--tls-key-file", keyFile)
	addr := strings.TrimPrefix(c.URL, "http://")
	c.URL = "https://" + addr
	if line, err := c.WaitLog("serving TLS on the public listener", time.Second); err != nil || line["subject"] != "CN=central-1" {
		t.Fatalf("start log: %v %v", line, err)
	}
	tokFile := writeSecret(t, "central-token", tok)
	d := StartHearthd(t, t.TempDir(), "--central-url", c.URL, "--central-token-file", tokFile, "--central-ca-file", caFile,
		"--forward-replay-jitter", "0s", "--forward-max-backoff", "500ms", "--edge-id", "tls-edge")
	phoneLocations(t, d, child, 0, 20)
	waitCentralHolds(t, c, d, 20)

	if cn, err := servedCN(addr, ca); err != nil || cn != "central-1" {
		t.Fatalf("served %q, %v", cn, err)
	}
	ca.WriteLeaf(t, certDir, "central-2")
	c.Signal(syscall.SIGHUP)
	testutil.WaitFor(t, 10*time.Second, func() error {
		if cn, err := servedCN(addr, ca); err != nil || cn != "central-2" {
			return fmt.Errorf("served %q, %v", cn, err)
		}
		return nil
	})
	if _, err := c.WaitLog("TLS certificate reloaded", time.Second); err != nil {
		t.Fatal(err)
	}
	phoneLocations(t, d, child, 20, 20)
	waitCentralHolds(t, c, d, 40)
	if code, body := get(t, c.Admin+"/readyz"); code != 200 {
		t.Fatalf("central not ready after the reload: %d %s", code, body)
	}

	// An edge without the CA refuses central's certificate: nothing is
	// sent, and the log says why.
	untrusting := StartHearthd(t, t.TempDir(), "--central-url", c.URL, "--central-token-file", tokFile,
		"--forward-replay-jitter", "0s", "--edge-id", "untrusting-edge")
	line, err := untrusting.WaitLog("roster sync failed; keeping the roster we have", 10*time.Second)
	if err != nil || !strings.Contains(fmt.Sprint(line["err"]), "certificate") {
		t.Fatalf("untrusting edge: %v %v", line, err)
	}
}

// Ensure that an edge refuses at start to send its token over plain HTTP
// to another host, saying how to fix it.
func TestHearthd_RefusesPlainHTTPCentral(t *testing.T) {
	p := StartNoWait(t, "hearthd", "--config", "", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
		"--central-url", "http://central.example:8080", "--central-token-file", writeSecret(t, "tok", "home-token-0123456789"))
	if err := p.Wait(15 * time.Second); err == nil || !strings.Contains(p.Log(), "central_insecure: true") {
		t.Fatalf("exit %v, log:\n%s", err, p.Log())
	}
}

// sharedTempDir is a temporary directory another user may enter, unlike
// t.TempDir's.
func sharedTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hearth-apptest-shared-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// notWritableMsg is central's log line when the database takes no write.
const notWritableMsg = "DATABASE NOT WRITABLE: batches and phones' data are refused and /readyz fails until it is fixed"

// Ensure that central on a SQLite database it cannot write starts, logs
// it loudly with the reason, fails /readyz with that reason and answers
// batches 503 (the edge keeps them). Run as root, the suite gives central
// the service user nobody and a database root created (the wrong owner);
// otherwise the database file is made read-only.
func TestCentral_ReadOnlyDatabase(t *testing.T) {
	dir := sharedTempDir(t)
	file := filepath.Join(dir, "central.db")
	db := "sqlite://" + file
	home, tok := CentralAddHome(t, db, "read-only")
	kid := CentralAddChild(t, db, home, "")
	cmd := exec.Command(filepath.Join(binDir, "hearth-central"), "serve", "--config", "", "--db", db,
		"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-format", "json")
	cmd.Env = cleanEnv()
	want := "chmod u+w"
	if os.Geteuid() == 0 {
		for path, mode := range map[string]os.FileMode{binDir: 0o755, file: 0o644} {
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		want = "belongs to root"
	} else if err := os.Chmod(file, 0o444); err != nil {
		t.Fatal(err)
	}
	p := StartCmd(t, cmd)
	ready, err := p.WaitLog("hearth-central ready", 15*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, p.Log())
	}
	line, err := p.WaitLog(notWritableMsg, time.Second)
	if err != nil || line["level"] != "ERROR" || !strings.Contains(fmt.Sprint(line["err"]), want) {
		t.Fatalf("loud log line: %v %v\n%s", line, err, p.Log())
	}
	c := &Central{Proc: p, URL: "http://" + ready["listen"].(string), Admin: "http://" + ready["admin"].(string), DB: db}
	if code, body := get(t, c.Admin+"/readyz"); code != 503 || !strings.Contains(body, "read-only") || !strings.Contains(body, want) {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	now := time.Now().UTC()
	r := c.PostBatch(t, tok, batchBody(now, locMsg(1, kid, now.Add(-time.Minute), 1, now)), true)
	if r.Code != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("batch on a read-only database: %d %s", r.Code, r.Body)
	}
}
