package daemon

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/guardianai/hearth/config"
	"github.com/guardianai/hearth/ingest"
)

// Config is hearthd's configuration; its yaml keys are also its flag names
// (with - for _) and HEARTH_* variables.
type Config struct {
	Listen      string   `yaml:"listen"`
	AdminListen string   `yaml:"admin_listen"`
	DataDir     string   `yaml:"data_dir"`
	Children    []string `yaml:"children"`

	MaxFrameBytes config.ByteSize `yaml:"max_frame_bytes"`
	MaxConns      int             `yaml:"max_conns"`
	MaxConnsPerIP int             `yaml:"max_conns_per_ip"`
	RatePerSecond float64         `yaml:"rate_per_second"`
	ReadTimeout   time.Duration   `yaml:"read_timeout"`
	IdleTimeout   time.Duration   `yaml:"idle_timeout"`
	PingInterval  time.Duration   `yaml:"ping_interval"`
	WriteTimeout  time.Duration   `yaml:"write_timeout"`

	OutboxMaxBytes    config.ByteSize `yaml:"outbox_max_bytes"`
	OutboxMaxMessages int64           `yaml:"outbox_max_messages"`
	RetentionDays     int             `yaml:"retention_days"`
	ShutdownTimeout   time.Duration   `yaml:"shutdown_timeout"`

	LogLevel  string `yaml:"log_level"`
	LogFormat string `yaml:"log_format"`
}

// DefaultConfig returns the settings of a fresh install.
func DefaultConfig() Config {
	lim := ingest.DefaultConfig()
	return Config{
		Listen:            ":8000",
		AdminListen:       "127.0.0.1:8001",
		DataDir:           "/var/lib/hearth",
		MaxFrameBytes:     config.ByteSize(lim.MaxFrameBytes),
		MaxConns:          lim.MaxConns,
		MaxConnsPerIP:     lim.MaxConnsPerIP,
		RatePerSecond:     lim.RatePerSecond,
		ReadTimeout:       10 * time.Second,
		IdleTimeout:       lim.IdleTimeout,
		PingInterval:      lim.PingInterval,
		WriteTimeout:      lim.WriteTimeout,
		OutboxMaxBytes:    1 << 30,
		OutboxMaxMessages: 5_000_000,
		RetentionDays:     365,
		ShutdownTimeout:   8 * time.Second,
		LogLevel:          "info",
		LogFormat:         "text",
	}
}

// Bind ties every setting to its flag and variable.
func (c *Config) Bind(b *config.Binder) {
	b.String(&c.Listen, "listen", "address for phones (WebSocket and HTTP)")
	b.String(&c.AdminListen, "admin-listen", "address for /metrics, /status, /healthz, /readyz")
	b.String(&c.DataDir, "data-dir", "directory of the outbox database")
	b.List(&c.Children, "children", "comma-separated child hashes allowed to send; empty accepts any child")
	b.Bytes(&c.MaxFrameBytes, "max-frame-bytes", "largest WebSocket frame or HTTP body")
	b.Int(&c.MaxConns, "max-conns", "most open WebSockets")
	b.Int(&c.MaxConnsPerIP, "max-conns-per-ip", "most open connections from one address")
	b.Float(&c.RatePerSecond, "rate-per-second", "data messages per connection per second")
	b.Duration(&c.ReadTimeout, "read-timeout", "time to read an HTTP request or WebSocket handshake")
	b.Duration(&c.IdleTimeout, "idle-timeout", "close a connection silent this long")
	b.Duration(&c.PingInterval, "ping-interval", "how often the server pings a WebSocket")
	b.Duration(&c.WriteTimeout, "write-timeout", "close a connection that does not take a reply in this time")
	b.Bytes(&c.OutboxMaxBytes, "outbox-max-bytes", "outbox quota in bytes; new data is refused beyond it")
	b.Int64(&c.OutboxMaxMessages, "outbox-max-messages", "outbox quota in messages")
	b.Int(&c.RetentionDays, "retention-days", "refuse data older than this many days (when the clock is trusted)")
	b.Duration(&c.ShutdownTimeout, "shutdown-timeout", "longest graceful shutdown")
	b.String(&c.LogLevel, "log-level", "debug, info, warn or error")
	b.String(&c.LogFormat, "log-format", "text or json")
}

// Validate reports every setting that cannot work.
func (c *Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	for name, addr := range map[string]string{"listen": c.Listen, "admin_listen": c.AdminListen} {
		_, _, err := net.SplitHostPort(addr)
		check(err == nil, "%s: %q is not host:port", name, addr)
	}
	check(c.DataDir != "", "data_dir: must be set")
	check(c.MaxFrameBytes >= 1024 && c.MaxFrameBytes <= 16<<20, "max_frame_bytes: %d is outside 1KiB-16MiB", c.MaxFrameBytes)
	check(c.MaxConns > 0, "max_conns: must be positive")
	check(c.MaxConnsPerIP > 0, "max_conns_per_ip: must be positive")
	check(c.RatePerSecond > 0, "rate_per_second: must be positive")
	for name, d := range map[string]time.Duration{"read_timeout": c.ReadTimeout, "idle_timeout": c.IdleTimeout, "ping_interval": c.PingInterval, "write_timeout": c.WriteTimeout, "shutdown_timeout": c.ShutdownTimeout} {
		check(d > 0, "%s: must be positive", name)
	}
	check(c.PingInterval < c.IdleTimeout, "ping_interval (%s) must be shorter than idle_timeout (%s)", c.PingInterval, c.IdleTimeout)
	check(c.OutboxMaxBytes >= 0 && c.OutboxMaxMessages >= 0, "outbox quotas must not be negative")
	check(c.RetentionDays > 0, "retention_days: must be positive")
	check(c.LogLevel == "debug" || c.LogLevel == "info" || c.LogLevel == "warn" || c.LogLevel == "error", "log_level: %q is not debug, info, warn or error", c.LogLevel)
	check(c.LogFormat == "text" || c.LogFormat == "json", "log_format: %q is not text or json", c.LogFormat)
	return errors.Join(errs...)
}

// Write prints the effective configuration as YAML-like key: value lines.
func (c *Config) Write(w io.Writer) {
	fmt.Fprintf(w, "listen: %s\nadmin_listen: %s\ndata_dir: %s\nchildren: %d\noutbox_max_bytes: %d\noutbox_max_messages: %d\n",
		c.Listen, c.AdminListen, c.DataDir, len(c.Children), c.OutboxMaxBytes, c.OutboxMaxMessages)
}
