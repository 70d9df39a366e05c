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
	RatePerSecond float64         `yaml:"rate_per_second"`
	ReadTimeout   time.Duration   `yaml:"read_timeout"`
	IdleTimeout   time.Duration   `yaml:"idle_timeout"`
	PingInterval  time.Duration   `yaml:"ping_interval"`
	WriteTimeout  time.Duration   `yaml:"write_timeout"`
}

// DefaultLimits returns the limits of DefaultConfig, with a read timeout
// for HTTP requests and WebSocket handshakes.
func DefaultLimits() Limits {
	d := DefaultConfig()
	return Limits{
		MaxFrameBytes: config.ByteSize(d.MaxFrameBytes),
		MaxConns:      d.MaxConns,
		MaxConnsPerIP: d.MaxConnsPerIP,
		RatePerSecond: d.RatePerSecond,
		ReadTimeout:   10 * time.Second,
		IdleTimeout:   d.IdleTimeout,
		PingInterval:  d.PingInterval,
		WriteTimeout:  d.WriteTimeout,
	}
}

// Bind ties the limits to their flags and variables.
func (l *Limits) Bind(b *config.Binder) {
	b.Bytes(&l.MaxFrameBytes, "max-frame-bytes", "largest WebSocket frame or device HTTP body")
	b.Int(&l.MaxConns, "max-conns", "most open WebSockets")
	b.Int(&l.MaxConnsPerIP, "max-conns-per-ip", "most open WebSockets from one address")
	b.Float(&l.RatePerSecond, "rate-per-second", "data messages per WebSocket per second")
	b.Duration(&l.ReadTimeout, "read-timeout", "time to read an HTTP request or WebSocket handshake")
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
	check(l.RatePerSecond > 0, "rate_per_second: must be positive")
	for name, d := range map[string]time.Duration{"read_timeout": l.ReadTimeout, "idle_timeout": l.IdleTimeout, "ping_interval": l.PingInterval, "write_timeout": l.WriteTimeout} {
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
	c.RatePerSecond = l.RatePerSecond
	c.RateBurst = int(2*l.RatePerSecond) + 1
	c.IdleTimeout = l.IdleTimeout
	c.PingInterval = l.PingInterval
	c.WriteTimeout = l.WriteTimeout
	return c
}
