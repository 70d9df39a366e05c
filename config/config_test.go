package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type testConfig struct {
	Listen  string        `yaml:"listen"`
	Max     ByteSize      `yaml:"max"`
	Timeout time.Duration `yaml:"timeout"`
	Kids    []string      `yaml:"kids"`
	Rate    float64       `yaml:"rate"`
}

func bindTest(c *testConfig) *Binder {
	b := NewBinder("test", os.Stderr)
	b.String(&c.Listen, "listen", "")
	b.Bytes(&c.Max, "max", "")
	b.Duration(&c.Timeout, "timeout", "")
	b.List(&c.Kids, "kids", "")
	b.Float(&c.Rate, "rate", "")
	return b
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Ensure that flags beat variables, variables beat the file, and the file
// beats the defaults.
func TestBinder_Load_Layers(t *testing.T) {
	file := writeFile(t, "listen: ':9000'\nmax: 64KiB\ntimeout: 5s\nkids: [a, b]\nrate: 3\n")
	t.Setenv("HEARTH_TIMEOUT", "7s")
	t.Setenv("HEARTH_RATE", "4")
	c := testConfig{Listen: ":1", Rate: 1}
	got, err := bindTest(&c).Load(&c, []string{"--config", file, "--rate", "5"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if got != file || c.Listen != ":9000" || c.Max != 64<<10 || c.Timeout != 7*time.Second || c.Rate != 5 || strings.Join(c.Kids, ",") != "a,b" {
		t.Fatalf("loaded %+v from %s", c, got)
	}
}

// Ensure that a typo in the file is an error, and a missing default file is not.
func TestBinder_Load_Errors(t *testing.T) {
	var c testConfig
	if _, err := bindTest(&c).Load(&c, []string{"--config", writeFile(t, "lisen: x\n")}, ""); err == nil || !strings.Contains(err.Error(), "lisen") {
		t.Fatalf("unknown key: %v", err)
	}
	if file, err := bindTest(&c).Load(&c, nil, "/nonexistent/default.yaml"); err != nil || file != "" {
		t.Fatalf("missing default file: %q, %v (want no file named, no error)", file, err)
	}
	if _, err := bindTest(&c).Load(&c, []string{"--config", "/nonexistent/x.yaml"}, ""); err == nil {
		t.Fatal("missing explicit file accepted")
	}
	t.Setenv("HEARTH_MAX", "lots")
	if _, err := bindTest(&c).Load(&c, nil, ""); err == nil || !strings.Contains(err.Error(), "HEARTH_MAX") {
		t.Fatalf("bad variable: %v", err)
	}
}

// Ensure that byte sizes and durations accept their units.
func TestParse_Units(t *testing.T) {
	for in, want := range map[string]ByteSize{"65536": 65536, "64KiB": 65536, "1GiB": 1 << 30, "2MB": 2e6, "1.5K": 1536} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ParseByteSize("-1"); err == nil {
		t.Error("negative size accepted")
	}
	if d, err := ParseDuration("2d"); err != nil || d != 48*time.Hour {
		t.Errorf("ParseDuration(2d) = %s, %v", d, err)
	}
}
