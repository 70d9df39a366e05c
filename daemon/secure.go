package daemon

import (
	"errors"
	"fmt"
	"io"

	"github.com/guardianai/hearth/config"
	"github.com/guardianai/hearth/internal/svc"
)

// bindProduction ties the production settings (token file, TLS to
// central, profiles) to their flags and variables.
func (c *Config) bindProduction(b *config.Binder) {
	c.bindOutboxSettle(b)
	b.String(&c.CentralTokenFile, "central-token-file", "file holding the home's token for central (mode 0640 or stricter; read at start)")
	b.Bool(&c.CentralInsecure, "central-insecure", "allow a plain http:// central_url to a host other than loopback (the token and data cross the network unencrypted)")
	b.String(&c.CentralCAFile, "central-ca-file", `PEM file of the CAs trusted for central's certificate ("" = the system's)`)
	b.Bool(&c.Pprof, "pprof", "serve Go profiles under /debug/pprof/ on the admin listener")
}

// LoadSecrets reads central_token_file into CentralToken. A token file
// other users may read is refused (see svc.ReadSecretFile), and so is a
// token set twice. Calling it again is a no-op.
func (c *Config) LoadSecrets() error {
	if err := c.loadPagePassword(); err != nil {
		return err
	}
	if c.CentralTokenFile == "" || c.centralTokenLoaded {
		return nil
	}
	if c.CentralToken != "" {
		return errors.New("central_token and central_token_file are both set: keep only central_token_file")
	}
	tok, err := svc.ReadSecretFile("central_token_file", c.CentralTokenFile)
	if err != nil {
		return err
	}
	c.CentralToken, c.centralTokenLoaded = tok, true
	return nil
}

// writeProduction prints the production settings for --check-config.
func (c *Config) writeProduction(w io.Writer) {
	fmt.Fprintf(w, "central_token_file: %s\ncentral_insecure: %t\ncentral_ca_file: %s\npprof: %t\n",
		c.CentralTokenFile, c.CentralInsecure, c.CentralCAFile, c.Pprof)
}
