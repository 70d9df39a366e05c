package daemon

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/guardianai/hearth/config"
	"github.com/guardianai/hearth/ingest"
	"github.com/guardianai/hearth/internal/svc"
	"github.com/guardianai/hearth/outbox"
)

// Config is hearthd's configuration; its yaml keys are also its flag names
// (with - for _) and HEARTH_* variables.
type Config struct {
	svc.Service   `yaml:",inline"`
	ingest.Limits `yaml:",inline"`
	PageConfig    `yaml:",inline"` // the household's page (page.go)

	DataDir  string   `yaml:"data_dir"`
	Children []string `yaml:"children"`

	// Storage safety (storage.go): no outbox in RAM, wait for a late disk.
	AllowVolatileDataDir bool          `yaml:"allow_volatile_data_dir"`
	RequireMount         string        `yaml:"require_mount"`
	RequireMountTimeout  time.Duration `yaml:"require_mount_timeout"`

	OutboxMaxBytes    config.ByteSize `yaml:"outbox_max_bytes"`
	OutboxMaxMessages int64           `yaml:"outbox_max_messages"`
	RetentionDays     int             `yaml:"retention_days"`

	// Forwarding to central (off while CentralURL is empty).
	CentralURL           string          `yaml:"central_url"`
	CentralToken         string          `yaml:"central_token"`
	EdgeID               string          `yaml:"edge_id"`
	ForwardBatchMessages int             `yaml:"forward_batch_messages"`
	ForwardBatchBytes    config.ByteSize `yaml:"forward_batch_bytes"`
	ForwardMaxBackoff    time.Duration   `yaml:"forward_max_backoff"`
	ForwardTimeout       time.Duration   `yaml:"forward_timeout"`
	ForwardReplayJitter  time.Duration   `yaml:"forward_replay_jitter"`
	ForwardMaxRate       float64         `yaml:"forward_max_rate"`
	ForwardReplayAge     time.Duration   `yaml:"forward_replay_age"`

	// OutboxDeadMaxMessages caps the dead letters (the oldest go first);
	// they are also purged once older than retention_days.
	OutboxDeadMaxMessages int64 `yaml:"outbox_dead_max_messages"`

	// Production settings (secure.go): the token from a file, TLS to
	// central, profiles.
	CentralTokenFile string `yaml:"central_token_file"`
	CentralInsecure  bool   `yaml:"central_insecure"`
	CentralCAFile    string `yaml:"central_ca_file"`
	Pprof            bool   `yaml:"pprof"`
	// centralTokenLoaded: CentralToken came from CentralTokenFile (LoadSecrets).
	centralTokenLoaded bool

	// OutboxSettleDelay: how long the deletes of forwarded messages wait
	// for an append to share its commit (outbox_settle.go); 0 means 5s.
	OutboxSettleDelay time.Duration `yaml:"outbox_settle_delay"`
}

// defaultOutboxMaxBytes is 1 GiB, or 256 MiB on 32-bit routers: bbolt maps
// the whole file, and a 32-bit process cannot map much more than 1 GiB
// (less on mips) next to everything else.
const defaultOutboxMaxBytes = 256 << 20 << (2 * (strconv.IntSize / 64)) // 1 GiB on 64-bit, 256 MiB on 32-bit

// checkMapLimit refuses, on a 32-bit CPU, a quota the outbox file cannot
// hold within outbox.MaxFileBytes32 (bbolt maps the whole file): the file
// needs room beyond its data for page overhead and free pages.
func checkMapLimit(quota int64) []error {
	return checkMapLimitFor(quota, strconv.IntSize)
}

func checkMapLimitFor(quota int64, intSize int) []error {
	if intSize != 32 {
		return nil
	}
	if limit := int64(outbox.MaxFileBytes32 / 2); quota == 0 || quota > limit {
		return []error{fmt.Errorf("outbox_max_bytes: %d; on this 32-bit CPU the outbox file is limited to %d bytes (its whole file is mapped in memory), so the quota must be set and at most %d",
			quota, outbox.MaxFileBytes32, limit)}
	}
	return nil
}

// DefaultConfig returns the settings of a fresh install.
func DefaultConfig() Config {
	return Config{
		Service: svc.Service{
			Listen:          ":8000",
			AdminListen:     "127.0.0.1:8001",
			ShutdownTimeout: 8 * time.Second,
			LogLevel:        "info",
			LogFormat:       "text",
		},
		Limits:              ingest.DefaultLimits(),
		DataDir:             "/var/lib/hearth",
		RequireMountTimeout: 2 * time.Minute,
		OutboxMaxBytes:      defaultOutboxMaxBytes,
		OutboxMaxMessages:   5_000_000,
		RetentionDays:       365,

		ForwardBatchMessages: 500,
		ForwardBatchBytes:    1 << 20,
		ForwardMaxBackoff:    5 * time.Minute,
		ForwardTimeout:       30 * time.Second,
		ForwardReplayJitter:  10 * time.Second,
		ForwardMaxRate:       200,
		ForwardReplayAge:     5 * time.Minute,

		OutboxDeadMaxMessages: 10_000,

		OutboxSettleDelay: 5 * time.Second,
	}
}

// Bind ties every setting to its flag and variable.
func (c *Config) Bind(b *config.Binder) {
	c.Service.Bind(b, "address for phones (WebSocket and HTTP)")
	c.Limits.Bind(b)
	b.String(&c.DataDir, "data-dir", "directory of the outbox database")
	c.bindStorage(b)
	b.List(&c.Children, "children", "comma-separated child hashes allowed to send; with central_url a child must also be on central's roster; empty: any child (standalone) or central's roster")
	b.Bytes(&c.OutboxMaxBytes, "outbox-max-bytes", "outbox quota in bytes; new data is refused beyond it")
	b.Int64(&c.OutboxMaxMessages, "outbox-max-messages", "outbox quota in messages")
	b.Int(&c.RetentionDays, "retention-days", "refuse data older than this many days (when the clock is trusted)")
	b.String(&c.CentralURL, "central-url", "hearth-central's base URL (e.g. http://central:8080); empty: only store, do not forward")
	b.String(&c.CentralToken, "central-token", "the home's bearer token for central; prefer --central-token-file or HEARTH_CENTRAL_TOKEN: arguments are visible to every local user")
	b.String(&c.EdgeID, "edge-id", "this edge's name in batches; empty: the host name")
	b.Int(&c.ForwardBatchMessages, "forward-batch-messages", "most messages per batch sent to central")
	b.Bytes(&c.ForwardBatchBytes, "forward-batch-bytes", "most bytes per batch before gzip")
	b.Duration(&c.ForwardMaxBackoff, "forward-max-backoff", "longest wait between retries (and the retry interval while central refuses the token)")
	b.Duration(&c.ForwardTimeout, "forward-timeout", "time limit of one request to central")
	b.Duration(&c.ForwardReplayJitter, "forward-replay-jitter", "a backlog found at start is replayed after a random delay up to this")
	b.Float(&c.ForwardMaxRate, "forward-max-rate", "most messages per second sent while the oldest pending message is older than forward_replay_age (0: no cap)")
	b.Duration(&c.ForwardReplayAge, "forward-replay-age", "a backlog whose oldest message is older than this is replayed at forward_max_rate, new messages first")
	b.Int64(&c.OutboxDeadMaxMessages, "outbox-dead-max-messages", "most dead letters kept; beyond it the oldest are purged (0: no cap)")
	c.bindProduction(b)
	c.bindPage(b)
}

// Validate reports every setting that cannot work.
func (c *Config) Validate() error {
	errs := append(c.Service.Validate(), c.Limits.Validate()...)
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir: must be set"))
	}
	if c.OutboxMaxBytes < 0 || c.OutboxMaxMessages < 0 || c.OutboxDeadMaxMessages < 0 {
		errs = append(errs, errors.New("outbox quotas (outbox_max_bytes, outbox_max_messages, outbox_dead_max_messages) must not be negative"))
	}
	errs = append(errs, checkMapLimit(int64(c.OutboxMaxBytes))...)
	if c.RetentionDays <= 0 {
		errs = append(errs, errors.New("retention_days: must be positive"))
	}
	errs = append(errs, c.validatePage()...)
	errs = append(errs, c.validateStorage()...)
	errs = append(errs, c.validateBuild()...)
	return errors.Join(append(errs, c.validateForward()...)...)
}

// Write prints the effective configuration's main keys.
func (c *Config) Write(w io.Writer) {
	fmt.Fprintf(w, "listen: %s\nadmin_listen: %s\ndata_dir: %s\nchildren: %d\noutbox_max_bytes: %d\noutbox_max_messages: %d\n",
		c.Listen, c.AdminListen, c.DataDir, len(c.Children), c.OutboxMaxBytes, c.OutboxMaxMessages)
	c.writeStorage(w)
	fmt.Fprintf(w, "central_url: %s\ncentral_token: %s\nedge_id: %s\n", c.CentralURL, redact(c.CentralToken), c.edgeID())
	c.writeProduction(w)
	c.writePage(w)
}
