package daemon

import (
	"fmt"
	"io"
	"log/slog"
)

// Accepts says in plain words which children the configuration lets send.
func (c *Config) Accepts() string {
	switch {
	case c.CentralURL != "" && len(c.Children) > 0:
		return fmt.Sprintf("the %d listed children that are on central's roster too", len(c.Children))
	case c.CentralURL != "":
		return "the children on central's roster"
	case len(c.Children) > 0:
		return fmt.Sprintf("the %d listed children", len(c.Children))
	}
	return "ANY child (no children listed and no central)"
}

// Forwarding says in plain words where acknowledged data goes.
func (c *Config) Forwarding() string {
	if c.CentralURL == "" {
		return "OFF: data stays in this box's outbox (no central_url)"
	}
	return "to " + c.CentralURL
}

// WriteEffective prints what --check-config reports: the file read, what
// the configuration does, and its main keys.
func (c *Config) WriteEffective(w io.Writer, file string) {
	if file == "" {
		fmt.Fprintln(w, "configuration ok (no configuration file read: defaults, environment and flags)")
	} else {
		fmt.Fprintf(w, "configuration ok (read %s)\n", file)
	}
	fmt.Fprintf(w, "accepts: %s\nforwarding: %s\n", c.Accepts(), c.Forwarding())
	c.Write(w)
}

// warnUnguarded logs at WARN what a household would not guess from a
// quiet start: data that never leaves the box, or phones of any child
// accepted.
func (c *Config) warnUnguarded(log *slog.Logger) {
	if c.CentralURL == "" {
		log.Warn("forwarding is OFF: acknowledged data stays in this box's outbox until central_url is set")
	}
	if c.CentralURL == "" && len(c.Children) == 0 {
		log.Warn("ANY child is accepted: no children are listed and there is no central roster; set children or central_url")
	}
}
