package apptest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"github.com/guardianai/hearth"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Central is a running hearth-central.
type Central struct {
	*Proc
	URL   string // edges' and phones' base URL
	Admin string // admin base URL
	DB    string // database URL
}

// StartCentral runs `hearth-central serve` on dbURL on free loopback ports,
// with no config file and JSON logs; args are added flags.
func StartCentral(t *testing.T, dbURL string, args ...string) *Central {
	t.Helper()
	base := []string{"serve", "--config", "", "--db", dbURL, "--listen", "127.0.0.1:0",
		"--admin-listen", "127.0.0.1:0", "--log-format", "json"}
	p := Start(t, "hearth-central", "hearth-central ready", append(base, args...)...)
	ready, _ := p.WaitLog("hearth-central ready", time.Second)
	return &Central{Proc: p, URL: "http://" + ready["listen"].(string), Admin: "http://" + ready["admin"].(string), DB: dbURL}
}

// CentralSQLite returns the database URL of a fresh SQLite file in a
// temporary directory.
func CentralSQLite(t *testing.T) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "central.db")
}

// RunCentral runs the hearth-central subcommand command ("home add",
// "stats", …) on dbURL with args (its flags, then its arguments) and
// returns stdout, stderr and the exit code.
func RunCentral(t *testing.T, dbURL, command string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	argv := append(strings.Fields(command), "--config", "", "--db", dbURL)
	cmd := exec.Command(filepath.Join(binDir, "hearth-central"), append(argv, args...)...)
	cmd.Env = cleanEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run hearth-central %s: %v", command, err)
	}
	return out.String(), errb.String(), 0
}

// CentralJSON runs a subcommand that prints JSON (add --json where the
// command takes it) and decodes its output into v; it fails the test on a
// non-zero exit.
func CentralJSON(t *testing.T, dbURL string, v any, command string, args ...string) {
	t.Helper()
	out, errs, code := RunCentral(t, dbURL, command, args...)
	if code != 0 {
		t.Fatalf("hearth-central %s %q: exit %d: %s", command, args, code, errs)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("hearth-central %s %q: output %q: %v", command, args, out, err)
	}
}

// CentralAddHome creates a home and returns its id and token.
func CentralAddHome(t *testing.T, dbURL, name string) (id, token string) {
	t.Helper()
	var h struct {
		HomeID string `json:"home_id"`
		Token  string `json:"token"`
	}
	CentralJSON(t, dbURL, &h, "home add", "--json", name)
	if h.HomeID == "" || h.Token == "" {
		t.Fatalf("home add --json gave %+v", h)
	}
	return h.HomeID, h.Token
}

// CentralAddReader creates a reader token for home's children's data and
// returns it.
func CentralAddReader(t *testing.T, dbURL, home string) string {
	t.Helper()
	var r struct {
		Token string `json:"token"`
	}
	CentralJSON(t, dbURL, &r, "home add-reader", "--json", home)
	if r.Token == "" {
		t.Fatalf("home add-reader --json gave no token")
	}
	return r.Token
}

// CentralAddChild adds a child to home (hash "" for a generated one) and returns its hash.
func CentralAddChild(t *testing.T, dbURL, home, hash string) string {
	t.Helper()
	var c struct {
		ChildHash string `json:"child_hash"`
	}
	args := []string{"--json", "--home", home}
	if hash != "" {
		args = append(args, "--hash", hash)
	}
	CentralJSON(t, dbURL, &c, "child add", args...)
	return c.ChildHash
}

// CentralStats returns the row counts of `hearth-central stats`.
func CentralStats(t *testing.T, dbURL string) map[string]int64 {
	t.Helper()
	var st map[string]int64
	CentralJSON(t, dbURL, &st, "stats")
	return st
}

// CentralReply is an HTTP answer in a test.
type CentralReply struct {
	Code   int
	Body   []byte
	Header http.Header
}

// JSON decodes the body into v, failing the test when it is not JSON.
func (r CentralReply) JSON(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("reply %d %q: %v", r.Code, r.Body, err)
	}
}

// PostBatch posts an edge batch body with token ("" for none), gzipped
// when zip is set.
func (c *Central) PostBatch(t *testing.T, token string, body []byte, zip bool) CentralReply {
	t.Helper()
	hdr := map[string]string{"Content-Type": "application/json"}
	if zip {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(body)
		zw.Close()
		body = b.Bytes()
		hdr["Content-Encoding"] = "gzip"
	}
	return c.Do(t, http.MethodPost, hearth.PathEdgeBatches, token, body, hdr)
}

// PostRaw sends a batch over a bare TCP connection and reads the answer
// even when the server answers (413) before the body is written and closes:
// net/http's client then often reports only the broken pipe.
func (c *Central) PostRaw(t *testing.T, token string, body []byte) CentralReply {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(c.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/edge/batches HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", token, len(body))
	go conn.Write(body) // may fail once the server has answered: that is the point
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return CentralReply{Code: resp.StatusCode, Body: b, Header: resp.Header}
}

// Do sends a request to the public listener with a bearer token ("" for none).
func (c *Central) Do(t *testing.T, method, path, token string, body []byte, hdr map[string]string) CentralReply {
	t.Helper()
	req, err := http.NewRequest(method, c.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return CentralReply{Code: resp.StatusCode, Body: b, Header: resp.Header}
}

// cleanEnv is the environment without HEARTH_* settings, so that a
// developer's shell does not change what the tests run.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HEARTH_") {
			env = append(env, kv)
		}
	}
	return env
}
