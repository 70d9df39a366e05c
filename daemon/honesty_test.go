package daemon

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/guardianai/hearth/internal/testutil"
)

// startLogged starts a daemon whose log is returned, with edit applied.
func startLogged(t *testing.T, edit func(*Config)) (*Daemon, *testutil.SyncBuffer) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen, cfg.AdminListen, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	if edit != nil {
		edit(&cfg)
	}
	var out testutil.SyncBuffer
	d, err := New(cfg, slog.New(slog.NewTextHandler(&out, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
	})
	return d, &out
}

func TestStart_WarnsWhenNothingLeavesAndAnyChildIsAccepted(t *testing.T) {
	_, out := startLogged(t, nil)
	log := out.String()
	for _, want := range []string{"level=WARN msg=\"forwarding is OFF", "level=WARN msg=\"ANY child is accepted", "version=" + Version} {
		if !strings.Contains(log, want) {
			t.Errorf("start log lacks %q:\n%s", want, log)
		}
	}
}

func TestStart_ListedChildrenWithoutCentral_WarnsOnlyForwarding(t *testing.T) {
	_, out := startLogged(t, func(c *Config) { c.Children = []string{"abc"} })
	log := out.String()
	if !strings.Contains(log, "forwarding is OFF") {
		t.Errorf("no forwarding warning:\n%s", log)
	}
	if strings.Contains(log, "ANY child") {
		t.Errorf("warned of any child although children are listed:\n%s", log)
	}
}

func TestStatusAndMetrics_NameTheVersion(t *testing.T) {
	old := Version
	Version = "9.8.7-test"
	t.Cleanup(func() { Version = old })
	d, _ := startLogged(t, nil)
	if got := status(t, d)["version"]; got != "9.8.7-test" {
		t.Errorf("/status version = %v", got)
	}
	resp, err := http.Get("http://" + d.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `hearth_build_info{component="hearthd"`) || !strings.Contains(string(body), `version="9.8.7-test"`) {
		t.Errorf("metrics lack hearth_build_info with the version")
	}
}

func TestWriteEffective_SaysWhichFileAndWhatItDoes(t *testing.T) {
	cases := []struct {
		file string
		edit func(*Config)
		want []string
	}{
		{"", nil, []string{"no configuration file read", "accepts: ANY child", "forwarding: OFF"}},
		{"/etc/hearth/hearthd.yaml", func(c *Config) { c.CentralURL = "https://central.example" },
			[]string{"read /etc/hearth/hearthd.yaml", "accepts: the children on central's roster", "forwarding: to https://central.example"}},
		{"x.yaml", func(c *Config) { c.CentralURL, c.Children = "http://c", []string{"a", "b"} },
			[]string{"accepts: the 2 listed children that are on central's roster too"}},
	}
	for _, tc := range cases {
		cfg := DefaultConfig()
		if tc.edit != nil {
			tc.edit(&cfg)
		}
		var b bytes.Buffer
		cfg.WriteEffective(&b, tc.file)
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("file %q: output lacks %q:\n%s", tc.file, w, b.String())
			}
		}
	}
}
