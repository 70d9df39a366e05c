//go:build nopprof

package daemon

import (
	"strings"
	"testing"
)

// Ensure that a hearthd built without profiles refuses pprof: true with
// the reason, instead of starting without what was asked for.
func TestConfig_Pprof_NotBuilt(t *testing.T) {
	cfg := storageConfig("/var/lib/hearth")
	cfg.Pprof = true
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "nopprof") {
		t.Fatalf("pprof: true in a nopprof build: %v, want a refusal naming the build tag", err)
	}
	cfg.Pprof = false
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}
