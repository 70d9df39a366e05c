package svc

import (
	"fmt"
	"net"
	"time"

	"github.com/guardianai/hearth/config"
)

// Service holds the settings every hearth server has: its two listeners,
// its logs and how long it may take to stop. Programs embed it inline.
type Service struct {
	Listen          string        `yaml:"listen"`
	AdminListen     string        `yaml:"admin_listen"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	LogLevel        string        `yaml:"log_level"`
	LogFormat       string        `yaml:"log_format"`
}

// Bind ties the settings to flags; listenUsage says who uses Listen.
func (s *Service) Bind(b *config.Binder, listenUsage string) {
	b.String(&s.Listen, "listen", listenUsage)
	b.String(&s.AdminListen, "admin-listen", "address for /metrics, /healthz, /readyz (and /status)")
	b.Duration(&s.ShutdownTimeout, "shutdown-timeout", "longest graceful shutdown")
	b.String(&s.LogLevel, "log-level", "debug, info, warn or error")
	b.String(&s.LogFormat, "log-format", "text or json")
}

// Validate returns one error per setting that cannot work.
func (s *Service) Validate() []error {
	var errs []error
	for name, addr := range map[string]string{"listen": s.Listen, "admin_listen": s.AdminListen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not host:port", name, addr))
		}
	}
	if s.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("shutdown_timeout: must be positive"))
	}
	switch s.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level: %q is not debug, info, warn or error", s.LogLevel))
	}
	if s.LogFormat != "text" && s.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("log_format: %q is not text or json", s.LogFormat))
	}
	return errs
}
