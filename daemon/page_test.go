package daemon

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/guardianai/hearth/ingest/ingesttest"
)

// pageBody reads the household page with the password.
func pageBody(t *testing.T, d *Daemon, password string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+d.PageAddr()+"/", nil)
	req.SetBasicAuth("hearth", password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func withPage(dir string) func(*Config) {
	return func(c *Config) {
		c.DataDir, c.PageListen, c.PagePassword = dir, "127.0.0.1:0", "s3cret-page"
		c.Children = []string{"kid-one"}
	}
}

func TestPage_CountsStoredAndRefusedPerChild_AcrossARestart(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, "", withPage(dir))
	conn := ingesttest.MustDial(t, target(d), "/ws/ingest/kid-one/")
	conn.Expect("connection_established")
	for range 3 {
		conn.Send(ingesttest.Frame("location", ingesttest.LocationData(1)))
		conn.ExpectAck("location")
	}
	offMap := `{"timestamp":"` + time.Now().UTC().Format(time.RFC3339) + `","latitude":91,"longitude":2}`
	conn.Send(ingesttest.Frame("location", offMap))
	conn.ExpectErrorCode("invalid")
	conn.Close()
	if _, resp, err := ingesttest.Dial(t, target(d), "/ws/ingest/kid-stranger/"); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("unknown child admitted: %v", err)
	}

	code, body := pageBody(t, d, "s3cret-page")
	if code != 200 {
		t.Fatalf("page: %d", code)
	}
	for _, want := range []string{"kid-one", `<td class="count">3</td>`, "kid-strang", "unknown_child", "1×", "hearth cannot read", "off</b>"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if code, _ := pageBody(t, d, "wrong"); code != 401 {
		t.Errorf("wrong password: %d", code)
	}

	// Restart on the same data directory: today's counts are still there.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	d2 := startDaemon(t, "", withPage(dir))
	if _, body := pageBody(t, d2, "s3cret-page"); !strings.Contains(body, `<td class="count">3</td>`) {
		t.Errorf("counts lost across a restart:\n%s", body)
	}
}

func TestPage_NeedsAPasswordToStart(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PageListen = "127.0.0.1:0"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "page_password_file") {
		t.Fatalf("page without password: %v", err)
	}
}

func TestPage_ShowsTheNamesCentralGives(t *testing.T) {
	fc := startCentral(t, 0, "kid")
	fc.names = map[string]string{"kid": "Alice <3"}
	d := startDaemon(t, fc.URL, func(c *Config) { c.PageListen, c.PagePassword = "127.0.0.1:0", "pw-for-test" })
	conn := ingesttest.MustDial(t, target(d), "/ws/ingest/kid/")
	conn.Expect("connection_established")
	conn.Send(ingesttest.Frame("location", ingesttest.LocationData(0)))
	conn.ExpectAck("location")
	_, body := pageBody(t, d, "pw-for-test")
	if !strings.Contains(body, "Alice &lt;3") || strings.Contains(body, ">kid<") {
		t.Errorf("the page does not name the child as central does (escaped):\n%s", body)
	}
	if !strings.Contains(body, "sending</b>") {
		t.Errorf("link not shown as sending")
	}
}

func TestCreatePagePassword_NewFileOnlyAndPrivate(t *testing.T) {
	g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "page-password")
	made, err := CreatePagePassword(file, g.Name)
	if err != nil || !made {
		t.Fatalf("create: %v %v", made, err)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, %v; want 0640", fi.Mode(), err)
	}
	cfg := DefaultConfig()
	cfg.PagePasswordFile = file
	if err := cfg.LoadSecrets(); err != nil || len(cfg.PagePassword) != 16 {
		t.Fatalf("the created password does not load: %q %v", cfg.PagePassword, err)
	}
	first := cfg.PagePassword
	if made, err := CreatePagePassword(file, g.Name); made || err != nil {
		t.Fatalf("an existing password was replaced: %v %v", made, err)
	}
	again := DefaultConfig()
	again.PagePasswordFile = file
	if err := again.LoadSecrets(); err != nil || again.PagePassword != first {
		t.Fatalf("password changed: %q -> %q (%v)", first, again.PagePassword, err)
	}
	if _, err := CreatePagePassword(filepath.Join(t.TempDir(), "x"), "no-such-group-hearth-test"); err == nil {
		t.Fatal("an unknown group was accepted")
	}
}
