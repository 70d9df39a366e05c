// Package packaging_test checks that the configuration files the packages
// install document every key with its real default.
package packaging_test

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/guardianai/hearth/central"
	"github.com/guardianai/hearth/config"
	"github.com/guardianai/hearth/daemon"
)

// setting is a commented-out key line: "#key: value".
var setting = regexp.MustCompile(`(?m)^#([a-z_]+:)`)

// uncomment writes file with every setting line enabled and returns its path.
func uncomment(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(file))
	if err := os.WriteFile(out, setting.ReplaceAll(data, []byte("$1")), 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// yamlKeys returns the yaml keys of a config struct.
func yamlKeys(v any) []string {
	return structKeys(reflect.TypeOf(v))
}

// structKeys lists the yaml keys of rt, descending into inline structs.
func structKeys(rt reflect.Type) []string {
	var keys []string
	for i := range rt.NumField() {
		k, opts, _ := strings.Cut(rt.Field(i).Tag.Get("yaml"), ",")
		switch {
		case opts == "inline":
			keys = append(keys, structKeys(rt.Field(i).Type)...)
		case k != "" && k != "-":
			keys = append(keys, k)
		}
	}
	return keys
}

// undocumented reports the keys of v that file does not list as "#key:".
func undocumented(t *testing.T, file string, v any) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, k := range yamlKeys(v) {
		if !regexp.MustCompile(`(?m)^#?` + k + `:`).Match(data) {
			missing = append(missing, k)
		}
	}
	return missing
}

func clearHearthEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "HEARTH_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

func loadHearthd(t *testing.T, file string, cfg daemon.Config) daemon.Config {
	t.Helper()
	b := config.NewBinder("hearthd", io.Discard)
	cfg.Bind(b)
	if _, err := b.Load(&cfg, []string{"--config", file}, ""); err != nil {
		t.Fatalf("load %s: %v", file, err)
	}
	if len(cfg.Children) == 0 {
		cfg.Children = nil
	}
	return cfg
}

func loadCentral(t *testing.T, file string, cfg central.Config) central.Config {
	t.Helper()
	b := config.NewBinder("hearth-central", io.Discard)
	cfg.Bind(b)
	if _, err := b.Load(&cfg, []string{"--config", file}, ""); err != nil {
		t.Fatalf("load %s: %v", file, err)
	}
	return cfg
}

// Ensure that hearthd.yaml lists every key, commented out with its default,
// and turns on only the household page.
func TestHearthdYAML_Defaults(t *testing.T) {
	clearHearthEnv(t)
	const file = "hearthd.yaml"
	if missing := undocumented(t, file, daemon.Config{}); len(missing) > 0 {
		t.Errorf("%s does not document %v", file, missing)
	}
	// The package turns the household page on (and nothing else).
	want := daemon.DefaultConfig()
	want.PageListen, want.PagePasswordFile = ":8002", "/etc/hearth/page-password"
	if got := loadHearthd(t, file, daemon.DefaultConfig()); !reflect.DeepEqual(got, want) {
		t.Errorf("%s as shipped changes more than the page:\n got %+v\nwant %+v", file, got, want)
	}
	if got := loadHearthd(t, uncomment(t, file), daemon.Config{}); !reflect.DeepEqual(got, want) {
		t.Errorf("%s uncommented is not the defaults:\n got %+v\nwant %+v", file, got, want)
	}
}

// Ensure that central.yaml lists every key, commented out with its default.
func TestCentralYAML_Defaults(t *testing.T) {
	clearHearthEnv(t)
	const file = "central.yaml"
	if missing := undocumented(t, file, central.Config{}); len(missing) > 0 {
		t.Errorf("%s does not document %v", file, missing)
	}
	def := central.DefaultConfig()
	if got := loadCentral(t, file, def); !reflect.DeepEqual(got, def) {
		t.Errorf("%s as shipped changes settings:\n got %+v\nwant %+v", file, got, def)
	}
	if got := loadCentral(t, uncomment(t, file), central.Config{}); !reflect.DeepEqual(got, def) {
		t.Errorf("%s uncommented is not the defaults:\n got %+v\nwant %+v", file, got, def)
	}
}
