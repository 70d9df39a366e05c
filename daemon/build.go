package daemon

import (
	"errors"

	"github.com/guardianai/hearth/internal/admin"
)

// validateBuild refuses settings this build cannot honour: the router
// packages are built with -tags nopprof, without Go's profiles.
func (c *Config) validateBuild() []error {
	if c.Pprof && !admin.PprofBuilt {
		return []error{errors.New("pprof: this hearthd has no Go profiles (built with -tags nopprof, as the OpenWrt packages are, to save flash); set pprof: false")}
	}
	return nil
}
