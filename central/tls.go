package central

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync/atomic"
	"time"
)

// certReloader serves the certificate of tls_cert_file and tls_key_file
// and swaps in a new one on Reload (SIGHUP), so a renewed certificate is
// served without closing the listener or any connection: each handshake
// takes whichever certificate is current.
type certReloader struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

// newCertReloader loads the certificate once; a pair that does not load
// stops the start.
func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the files again. On an error the previous certificate stays
// in use: a half-written renewal never takes the server off the air.
func (r *certReloader) Reload() error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	if c.Leaf == nil { // Go fills Leaf since 1.23; parse for older behaviour
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return fmt.Errorf("parse TLS certificate %s: %w", r.certFile, err)
		}
	}
	r.cert.Store(&c)
	return nil
}

// Leaf is the certificate being served.
func (r *certReloader) Leaf() *x509.Certificate { return r.cert.Load().Leaf }

// config is the public listener's TLS configuration. HTTP/2 is not
// offered (fasthttp speaks HTTP/1.1, which WebSocket upgrades need).
func (r *certReloader) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return r.cert.Load(), nil
		},
	}
}

// ReloadTLS reads tls_cert_file and tls_key_file again (on SIGHUP) and
// logs the outcome; on an error the previous certificate is still served.
func (s *Server) ReloadTLS() error {
	if s.certs == nil {
		s.log.Info("SIGHUP: nothing to reload (TLS is off: no tls_cert_file)")
		return nil
	}
	if err := s.certs.Reload(); err != nil {
		s.log.Error("TLS certificate reload failed; still serving the previous certificate", "err", err,
			"serving_not_after", s.certs.Leaf().NotAfter.UTC().Format(time.RFC3339))
		s.ops.tlsReloads.WithLabelValues("error").Inc()
		return err
	}
	s.ops.tlsReloads.WithLabelValues("ok").Inc()
	s.logCert("TLS certificate reloaded")
	return nil
}

// logCert logs which certificate is served, and warns when it expires
// within two weeks.
func (s *Server) logCert(msg string) {
	leaf := s.certs.Leaf()
	s.ops.tlsNotAfter.Set(float64(leaf.NotAfter.Unix()))
	s.log.Info(msg, "subject", leaf.Subject.String(), "dns_names", leaf.DNSNames,
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	if left := time.Until(leaf.NotAfter); left < 14*24*time.Hour {
		s.log.Warn("the TLS certificate expires soon: renew it and send SIGHUP", "expires_in", left.Round(time.Hour))
	}
}

// CheckTLS loads the certificate and key cfg names, if any, so that
// --check-config catches a pair that does not load.
func CheckTLS(cfg Config) error {
	if cfg.TLSCertFile == "" {
		return nil
	}
	_, err := newCertReloader(cfg.TLSCertFile, cfg.TLSKeyFile)
	return err
}
