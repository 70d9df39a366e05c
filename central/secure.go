package central

import (
	"errors"
	"fmt"
	"io"

	"github.com/guardianai/hearth/config"
	"github.com/guardianai/hearth/internal/svc"
)

// bindProduction ties the production settings (token file, TLS, profiles,
// write probe) to their flags and variables.
func (c *Config) bindProduction(b *config.Binder) {
	b.String(&c.AdminTokenFile, "admin-token-file", "file holding the admin token (mode 0640 or stricter; read at start)")
	b.String(&c.TLSCertFile, "tls-cert-file", `PEM certificate (chain) served on the public listener ("" = plain HTTP, behind a TLS reverse proxy); reloaded on SIGHUP`)
	b.String(&c.TLSKeyFile, "tls-key-file", "PEM private key of tls_cert_file; reloaded on SIGHUP")
	b.Bool(&c.Pprof, "pprof", "serve Go profiles under /debug/pprof/ on the admin listener")
	b.Duration(&c.DBProbeInterval, "db-probe-interval", "how often /readyz checks that the database takes a write")
}

// validateProduction reports production settings that cannot work. Files
// are read later: the token by LoadSecrets, the certificate by New.
func (c *Config) validateProduction() []error {
	var errs []error
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("tls_cert_file and tls_key_file: set both (TLS on the public listener) or neither (plain HTTP behind a TLS reverse proxy)"))
	}
	if c.DBProbeInterval <= 0 {
		errs = append(errs, errors.New("db_probe_interval: must be positive"))
	}
	return errs
}

// LoadSecrets reads admin_token_file into AdminToken. A token file that
// other users may read is refused (see svc.ReadSecretFile), and so is a
// token set twice: which one wins would be a guess. Calling it again is a
// no-op.
func (c *Config) LoadSecrets() error {
	if c.AdminTokenFile == "" || c.adminTokenLoaded {
		return nil
	}
	if c.AdminToken != "" {
		return errors.New("admin_token and admin_token_file are both set: keep only admin_token_file")
	}
	tok, err := svc.ReadSecretFile("admin_token_file", c.AdminTokenFile)
	if err != nil {
		return err
	}
	c.AdminToken, c.adminTokenLoaded = tok, true
	return nil
}

// writeProduction prints the production settings for --check-config.
func (c *Config) writeProduction(w io.Writer) {
	tls := "off (plain HTTP: put a TLS reverse proxy in front)"
	if c.TLSCertFile != "" {
		tls = fmt.Sprintf("on (cert %s, key %s)", c.TLSCertFile, c.TLSKeyFile)
	}
	fmt.Fprintf(w, "admin_token_file: %s\ntls: %s\npprof: %t\ndb_probe_interval: %s\n", c.AdminTokenFile, tls, c.Pprof, c.DBProbeInterval)
}
