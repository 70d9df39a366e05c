// Package loadgen plays many phones speaking the seed device protocol against
// a hearth server (hearthd or central) and measures acked messages and ack latency.
package loadgen

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"
)

// Mode is the transport the phones use.
type Mode string

// The transports of the device protocol (docs/protocol.md).
const (
	ModeWS     Mode = "ws"      // direct WebSocket: GET /ws/ingest/<child_hash>/
	ModeWSAuth Mode = "ws-auth" // WebSocket with the auth flow: GET /ws/ingest-auth/
	ModeHTTP   Mode = "http"    // HTTP fallback: POST /api/ingest/
)

// Mix is the kind of data the phones send.
type Mix string

// The mixes: one kind only, or the three kinds in turn.
const (
	MixLocation   Mix = "location"
	MixScreenTime Mix = "screen_time"
	MixSiteAccess Mix = "site_access"
	MixMixed      Mix = "mixed"
)

// Config describes one load run. Start from DefaultConfig.
type Config struct {
	// URL is the server's base URL: http(s)://host:port or ws(s)://host:port,
	// optionally with a path prefix.
	URL      string
	Mode     Mode
	Phones   int
	Messages int           // per phone; 0 sends until Duration ends
	Duration time.Duration // how long phones send and idle conns are held; 0 = until Messages are sent
	// Children are the child hashes given to the phones round-robin; empty
	// gives phone n (1-based) the child "load-<n>".
	Children []string
	Mix      Mix
	// Pipeline is the number of WebSocket frames a phone keeps in flight;
	// 1 waits for each ack as seed phones do.
	Pipeline int
	// Idle is the number of idle WebSockets opened before the phones start
	// and held for Duration (or until the phones finish).
	Idle int
	// AckLog, if set, receives one line "<child>\t<type>\t<key>\n" per
	// message, written only after its ack arrived; see AckKey.
	AckLog io.Writer
	// Timeout bounds one reply, handshake or HTTP request; a phone whose
	// reply does not come in time drops the connection and resends.
	Timeout time.Duration
	// ReconnectTimeout is how long a phone keeps trying to connect before
	// it gives up.
	ReconnectTimeout time.Duration
}

// DefaultConfig returns the configuration of `hearth-load` without flags.
func DefaultConfig() Config {
	return Config{
		URL:              "http://127.0.0.1:8000",
		Mode:             ModeWS,
		Phones:           50,
		Duration:         10 * time.Second,
		Mix:              MixMixed,
		Pipeline:         1,
		Timeout:          10 * time.Second,
		ReconnectTimeout: 10 * time.Second,
	}
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.Mode != ModeWS && c.Mode != ModeWSAuth && c.Mode != ModeHTTP:
		return fmt.Errorf("mode %q: want ws, ws-auth or http", c.Mode)
	case c.Mix != MixLocation && c.Mix != MixScreenTime && c.Mix != MixSiteAccess && c.Mix != MixMixed:
		return fmt.Errorf("mix %q: want location, screen_time, site_access or mixed", c.Mix)
	case c.Phones < 0 || c.Idle < 0 || c.Messages < 0 || c.Duration < 0:
		return errors.New("phones, idle, messages and duration must not be negative")
	case c.Phones == 0 && c.Idle == 0:
		return errors.New("nothing to do: no phones and no idle connections")
	case c.Phones > 0 && c.Messages == 0 && c.Duration == 0:
		return errors.New("give a duration or a number of messages per phone")
	case c.Phones == 0 && c.Duration == 0:
		return errors.New("idle connections need a duration to be held for")
	case c.Pipeline < 1:
		return fmt.Errorf("pipeline %d: want at least 1", c.Pipeline)
	case c.Timeout <= 0 || c.ReconnectTimeout <= 0:
		return errors.New("timeout and reconnect timeout must be positive")
	}
	for _, ch := range c.Children {
		if ch == "" || strings.ContainsAny(ch, "\t\r\n/") {
			return fmt.Errorf("child hash %q: must be non-empty without tabs, newlines or slashes", ch)
		}
	}
	_, err := parseTarget(c.URL)
	return err
}

// child returns the child hash of phone i (0-based).
func (c *Config) child(i int) string {
	if len(c.Children) == 0 {
		return fmt.Sprintf("load-%d", i+1)
	}
	return c.Children[i%len(c.Children)]
}

// target holds the endpoints derived from Config.URL.
type target struct {
	wsBase  string // ws(s)://host:port/prefix, without a trailing slash
	httpURL string // http(s)://host:port/prefix/api/ingest/
	addr    string // host:port for the HTTP client
	tls     bool
}

func parseTarget(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, fmt.Errorf("parse url: %w", err)
	}
	var t target
	switch u.Scheme {
	case "http", "ws":
	case "https", "wss":
		t.tls = true
	default:
		return target{}, fmt.Errorf("url %q: want an http(s):// or ws(s):// URL", raw)
	}
	if u.Host == "" {
		return target{}, fmt.Errorf("url %q: no host", raw)
	}
	t.addr = u.Host
	if u.Port() == "" {
		port := "80"
		if t.tls {
			port = "443"
		}
		t.addr = net.JoinHostPort(u.Hostname(), port)
	}
	prefix := strings.TrimSuffix(u.EscapedPath(), "/")
	httpScheme, wsScheme := "http", "ws"
	if t.tls {
		httpScheme, wsScheme = "https", "wss"
	}
	t.wsBase = wsScheme + "://" + u.Host + prefix
	t.httpURL = httpScheme + "://" + u.Host + prefix + "/api/ingest/"
	return t, nil
}

func (t target) directURL(child string) string {
	return t.wsBase + "/ws/ingest/" + url.PathEscape(child) + "/"
}

func (t target) authURL() string {
	return t.wsBase + "/ws/ingest-auth/"
}
