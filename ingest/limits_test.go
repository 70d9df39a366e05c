package ingest

import (
	"strings"
	"testing"
	"time"
)

// Ensure that the slow-client limits reach the Config, and that the
// pending caps follow the WebSocket caps unless set: hearthd's LAN and
// central's carrier NAT each get theirs without a setting of their own.
func TestLimits_SlowClientConfig(t *testing.T) {
	l := DefaultLimits()
	c := l.Config().withDefaults()
	if c.HeaderTimeout != 5*time.Second || c.BodyTimeout != 2*time.Minute || c.MinBodyRate != 1024 || c.AuthTimeout != 10*time.Second {
		t.Fatalf("defaults: header %s, body %s, rate %d, auth %s", c.HeaderTimeout, c.BodyTimeout, c.MinBodyRate, c.AuthTimeout)
	}
	if c.MaxPending != 256 || c.MaxPendingPerIP != 32 {
		t.Fatalf("hearthd's pending caps: %d in all, %d per address; want 256, 32", c.MaxPending, c.MaxPendingPerIP)
	}
	l.MaxConns, l.MaxConnsPerIP = 10000, 256 // central's
	if c := l.Config().withDefaults(); c.MaxPending != 2500 || c.MaxPendingPerIP != 256 {
		t.Fatalf("central's pending caps: %d in all, %d per address; want 2500, 256", c.MaxPending, c.MaxPendingPerIP)
	}
	l.MaxPendingConns, l.MaxPendingPerIP = 100, 10
	if c := l.Config().withDefaults(); c.MaxPending != 100 || c.MaxPendingPerIP != 10 {
		t.Fatalf("set pending caps: %d, %d; want 100, 10", c.MaxPending, c.MaxPendingPerIP)
	}
}

// Ensure that each slow-client setting that cannot work is named.
func TestLimits_ValidateSlowClients(t *testing.T) {
	l := DefaultLimits()
	l.MaxPendingConns, l.MaxPendingPerIP, l.HeaderTimeout, l.MinBodyRate, l.AuthTimeout = -1, -1, 0, 0, 0
	var msgs []string
	for _, err := range l.Validate() {
		msgs = append(msgs, err.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, key := range []string{"max_pending_conns", "max_pending_per_ip", "header_timeout", "min_body_rate", "auth_timeout"} {
		if !strings.Contains(all, key) {
			t.Errorf("no error names %s:\n%s", key, all)
		}
	}
}
