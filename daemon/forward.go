package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/guardianai/hearth/forwarder"
	"github.com/guardianai/hearth/ingest"
)

// RosterFile is the cache of central's roster inside the data directory.
const RosterFile = "roster.json"

// Version is this build's version, sent to central with every request;
// set it at build time with -ldflags "-X github.com/guardianai/hearth/daemon.Version=…".
var Version = "dev"

// validateForward checks the forwarding settings (only when forwarding is on).
func (c *Config) validateForward() []error {
	if c.CentralURL == "" {
		return nil
	}
	var errs []error
	if err := c.forwarderConfig().Validate(); err != nil {
		errs = append(errs, err)
	}
	if strings.ContainsFunc(c.EdgeID, unicode.IsControl) {
		errs = append(errs, fmt.Errorf("edge_id: %q contains a control character (it is sent in an HTTP header)", c.EdgeID))
	}
	if c.ForwardBatchMessages <= 0 {
		errs = append(errs, errors.New("forward_batch_messages: must be positive"))
	}
	if c.ForwardBatchBytes < 1024 {
		errs = append(errs, fmt.Errorf("forward_batch_bytes: %d is below 1KiB", c.ForwardBatchBytes))
	}
	if c.ForwardMaxBackoff < 10*time.Millisecond || c.ForwardTimeout <= 0 || c.ForwardReplayJitter < 0 {
		errs = append(errs, errors.New("forward_max_backoff (at least 10ms), forward_timeout (positive) and forward_replay_jitter (not negative) are out of range"))
	}
	if c.ForwardMaxRate < 0 || c.ForwardReplayAge < 0 {
		errs = append(errs, errors.New("forward_max_rate and forward_replay_age must not be negative"))
	}
	return errs
}

func (c *Config) forwarderConfig() forwarder.Config {
	return forwarder.Config{
		URL: c.CentralURL, Token: c.CentralToken, EdgeID: c.edgeID(), Version: Version,
		BatchMessages: c.ForwardBatchMessages, BatchBytes: int64(c.ForwardBatchBytes),
		MaxBackoff: c.ForwardMaxBackoff, Timeout: c.ForwardTimeout, ReplayJitter: c.ForwardReplayJitter,
		MaxRate: c.ForwardMaxRate, ReplayAge: c.ForwardReplayAge,
		CAFile: c.CentralCAFile, Insecure: c.CentralInsecure,
	}
}

// edgeID is edge_id, or the host name when it is empty.
func (c *Config) edgeID() string {
	if c.EdgeID != "" {
		return c.EdgeID
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "hearthd"
}

// redact shows only the start of a secret.
func redact(s string) string {
	switch {
	case s == "":
		return "(none)"
	case len(s) <= 8:
		return "(set)"
	}
	return s[:4] + "…"
}

// newForwarder prepares forwarding when central_url is set and returns the
// roster phones are checked against. Standalone, that is the static
// children list (empty: any child). With central it is central's roster
// (cached in RosterFile), narrowed by the static list when there is one:
// a child must be on both, so the operator's list can never admit a child
// central would refuse after the phone got its ack.
func (d *Daemon) newForwarder() (ingest.Roster, error) {
	static := ingest.NewStaticRoster(d.cfg.Children)
	if d.cfg.CentralURL == "" {
		return static, nil
	}
	roster := forwarder.OpenRoster(filepath.Join(d.cfg.DataDir, RosterFile), d.log)
	d.roster = roster
	fwd, err := forwarder.New(d.cfg.forwarderConfig(), d.outbox, roster, d.reg, d.log)
	if err != nil {
		return nil, err
	}
	d.fwd = fwd
	if len(d.cfg.Children) == 0 {
		return roster, nil
	}
	return allRosters{static, roster}, nil
}

// allRosters knows a child only when each of its rosters does, asked in
// order: a child the first refuses never makes the next one fetch
// central's roster again.
type allRosters []ingest.Roster

// Known implements ingest.Roster.
func (rs allRosters) Known(ctx context.Context, hash string) (bool, error) {
	for _, r := range rs {
		if ok, err := r.Known(ctx, hash); err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// startForwarder runs the forwarder until stopForwarder.
func (d *Daemon) startForwarder() {
	if d.fwd == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.stopFwd, d.fwdDone = cancel, make(chan struct{})
	go func() {
		defer close(d.fwdDone)
		d.fwd.Run(ctx)
	}()
	d.log.Info("forwarding to central", "central", d.cfg.CentralURL, "edge_id", d.cfg.edgeID(), "token", redact(d.cfg.CentralToken),
		"token_file", d.cfg.CentralTokenFile, "ca_file", d.cfg.CentralCAFile)
	if strings.HasPrefix(d.cfg.CentralURL, "http://") && d.cfg.CentralInsecure {
		d.log.Warn("central_url is plain http:// (central_insecure): the home's token and the children's data cross the network unencrypted")
	}
}

// stopForwarder stops the forwarder, abandoning a request in flight (the
// batch stays in the outbox and is sent again: at-least-once).
func (d *Daemon) stopForwarder(ctx context.Context) error {
	if d.stopFwd == nil {
		return nil
	}
	d.stopFwd()
	select {
	case <-d.fwdDone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("forwarder did not stop in time: %w", ctx.Err())
	}
}

// forwardStatus fills the forwarder's fields of /status.
func (d *Daemon) forwardStatus(s *Status) {
	s.ForwardState = string(forwarder.StateOff)
	if d.fwd == nil {
		return
	}
	fs := d.fwd.Status()
	s.ForwardState, s.ForwardedTotal, s.LastForwardError = string(fs.State), fs.ForwardedTotal, fs.LastError
	s.LastForwardErrorAt, s.NextRetryAt = timeOrNil(fs.LastErrorAt), timeOrNil(fs.NextRetryAt)
	s.ForwardRateCap = fs.RateCap
	offset := d.fwd.Clock().Offset().Seconds()
	s.ClockOffsetSeconds = &offset
}

// timeOrNil is t for JSON, nil (left out) when zero.
func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
