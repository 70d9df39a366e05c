package ingest

import (
	"fmt"
	"time"

	"github.com/guardianai/hearth/config"
)

// Limits are the device protocol's settings as a program's configuration
// file, flags and HEARTH_* variables spell them; hearthd and hearth-central
// embed them inline.
type Limits struct {
	MaxFrameBytes config.ByteSize `yaml:"max_frame_bytes"`
	MaxConns      int             `yaml:"max_conns"`
	MaxConnsPerIP int             `yaml:"max_conns_per_ip"`
	// Pending connections (not an established WebSocket); 0 derives them
	// from max_conns and max_conns_per_ip (see Config.MaxPending).
	MaxPendingConns int             `yaml:"max_pending_conns"`
	MaxPendingPerIP int             `yaml:"max_pending_per_ip"`
	RatePerSecond   float64         `yaml:"rate_per_second"`
	HeaderTimeout   time.Duration   `yaml:"header_timeout"`
	ReadTimeout     time.Duration   `yaml:"read_timeout"` // a request body, after its headers
	MinBodyRate     config.ByteSize `yaml:"min_body_rate"`
	AuthTimeout     time.Duration   `yaml:"auth_timeout"`
	IdleTimeout     time.Duration   `yaml:"idle_timeout"`
	PingInterval    time.Duration   `yaml:"ping_interval"`
	WriteTimeout    time.Duration   `yaml:"write_timeout"`
}

// DefaultLimits returns the limits of DefaultConfig.
func DefaultLimits() Limits {
	d := DefaultConfig()
	return Limits{
		MaxFrameBytes: config.ByteSize(d.MaxFrameBytes),
		MaxConns:      d.MaxConns,
		MaxConnsPerIP: d.MaxConnsPerIP,
		RatePerSecond: d.RatePerSecond,
		HeaderTimeout: d.HeaderTimeout,
		ReadTimeout:   d.BodyTimeout,
		MinBodyRate:   config.ByteSize(d.MinBodyRate),
		AuthTimeout:   d.AuthTimeout,
		IdleTimeout:   d.IdleTimeout,
		PingInterval:  d.PingInterval,
		WriteTimeout:  d.WriteTimeout,
	}
}

// Bind ties the limits to their flags and variables.
func (l *Limits) Bind(b *config.Binder) {
	b.Bytes(&l.MaxFrameBytes, "max-frame-bytes", "largest WebSocket frame or device HTTP body")
	b.Int(&l.MaxConns, "max-conns", "most open WebSockets")
	b.Int(&l.MaxConnsPerIP, "max-conns-per-ip", "most open WebSockets from one address (IPv6: one /64)")
	b.Int(&l.MaxPendingConns, "max-pending-conns", "most connections not yet an authenticated WebSocket (requests being read, idle keep-alive, auth flow before auth); 0: max(256, max-conns/4)")
	b.Int(&l.MaxPendingPerIP, "max-pending-per-ip", "most such pending connections from one address; 0: max-conns-per-ip")
	b.Float(&l.RatePerSecond, "rate-per-second", "data messages per WebSocket per second")
	b.Duration(&l.HeaderTimeout, "header-timeout", "time to receive an HTTP request's headers (or a WebSocket handshake)")
	b.Duration(&l.ReadTimeout, "read-timeout", "longest time to receive a request body after its headers")
	b.Bytes(&l.MinBodyRate, "min-body-rate", "bytes per second a request must average once header-timeout plus 5s have passed; slower ones are cut")
	b.Duration(&l.AuthTimeout, "auth-timeout", "time the auth flow (/ws/ingest-auth/) has to authenticate")
	b.Duration(&l.IdleTimeout, "idle-timeout", "close a connection silent this long")
	b.Duration(&l.PingInterval, "ping-interval", "how often the server pings a WebSocket")
	b.Duration(&l.WriteTimeout, "write-timeout", "close a connection that does not take a reply in this time")
}

// Validate returns one error per limit that cannot work.
func (l *Limits) Validate() []error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(l.MaxFrameBytes >= 1024 && l.MaxFrameBytes <= 16<<20, "max_frame_bytes: %d is outside 1KiB-16MiB", l.MaxFrameBytes)
	check(l.MaxConns > 0, "max_conns: must be positive")
	check(l.MaxConnsPerIP > 0, "max_conns_per_ip: must be positive")
	check(l.MaxPendingConns >= 0, "max_pending_conns: must not be negative")
	check(l.MaxPendingPerIP >= 0, "max_pending_per_ip: must not be negative")
	check(l.RatePerSecond > 0, "rate_per_second: must be positive")
	check(l.MinBodyRate > 0, "min_body_rate: must be positive (bytes per second)")
	for name, d := range map[string]time.Duration{"header_timeout": l.HeaderTimeout, "read_timeout": l.ReadTimeout, "auth_timeout": l.AuthTimeout,
		"idle_timeout": l.IdleTimeout, "ping_interval": l.PingInterval, "write_timeout": l.WriteTimeout} {
		check(d > 0, "%s: must be positive", name)
	}
	check(l.PingInterval < l.IdleTimeout, "ping_interval (%s) must be shorter than idle_timeout (%s)", l.PingInterval, l.IdleTimeout)
	return errs
}

// Config returns an ingest Config with these limits and DefaultConfig's other values.
func (l *Limits) Config() Config {
	c := DefaultConfig()
	c.MaxFrameBytes = int(l.MaxFrameBytes)
	c.MaxConns = l.MaxConns
	c.MaxConnsPerIP = l.MaxConnsPerIP
	c.MaxPending = l.MaxPendingConns
	c.MaxPendingPerIP = l.MaxPendingPerIP
	c.HeaderTimeout = l.HeaderTimeout
	c.BodyTimeout = l.ReadTimeout
	c.MinBodyRate = int(l.MinBodyRate)
	c.AuthTimeout = l.AuthTimeout
	c.RatePerSecond = l.RatePerSecond
	c.RateBurst = int(2*l.RatePerSecond) + 1
	c.IdleTimeout = l.IdleTimeout
	c.PingInterval = l.PingInterval
	c.WriteTimeout = l.WriteTimeout
	return c
}
