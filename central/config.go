package central

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/store"
	"github.com/guardianai/hearth/config"
	"github.com/guardianai/hearth/ingest"
	"github.com/guardianai/hearth/internal/svc"
)

// Config is hearth-central's configuration; its yaml keys are also its flag
// names (with - for _) and HEARTH_* variables.
type Config struct {
	svc.Service   `yaml:",inline"`
	ingest.Limits `yaml:",inline"`

	DataDir string `yaml:"data_dir"`
	// DB is "sqlite:///path/file.db" or a postgres:// URL; "" means
	// sqlite://<data_dir>/central.db.
	DB string `yaml:"db"`
	// Schema is the tables central writes: "hearth", its own, or
	// "guardianai", the GuardianAI dashboard's Django tables (README,
	// "GuardianAI").
	Schema string `yaml:"schema"`
	// AdminToken lets the operator read any child's data; "" allows only
	// reader tokens on the read API. Prefer AdminTokenFile: a flag is
	// visible to every local user.
	AdminToken string `yaml:"admin_token"`

	// Version is the build's version (set by the command, not the file):
	// in /status, the ready log line, hearth_build_info and the console.
	Version string `yaml:"-"`

	RetentionDays  int           `yaml:"retention_days"`
	PruneInterval  time.Duration `yaml:"prune_interval"`
	ClockTolerance time.Duration `yaml:"clock_tolerance"`

	MaxBatchBytes             config.ByteSize `yaml:"max_batch_bytes"`
	MaxBatchDecompressedBytes config.ByteSize `yaml:"max_batch_decompressed_bytes"`
	MaxBatchMessages          int             `yaml:"max_batch_messages"`
	BatchReadTimeout          time.Duration   `yaml:"batch_read_timeout"`
	StoreTimeout              time.Duration   `yaml:"store_timeout"`
	RetryAfter                time.Duration   `yaml:"retry_after"`
	MaxDBConns                int             `yaml:"max_db_conns"`

	// FloodLimits bound memory and keep homes fair (limits.go).
	FloodLimits `yaml:",inline"`

	// Production settings (secure.go): secrets from files, TLS, profiles,
	// the database write probe behind /readyz.
	AdminTokenFile  string        `yaml:"admin_token_file"`
	TLSCertFile     string        `yaml:"tls_cert_file"`
	TLSKeyFile      string        `yaml:"tls_key_file"`
	Pprof           bool          `yaml:"pprof"`
	DBProbeInterval time.Duration `yaml:"db_probe_interval"`
	// adminTokenLoaded: AdminToken came from AdminTokenFile (LoadSecrets).
	adminTokenLoaded bool
}

// DBFile is the SQLite file's name inside the data directory.
const DBFile = "central.db"

// DefaultConfig returns the settings of a fresh install.
func DefaultConfig() Config {
	lim := ingest.DefaultLimits()
	lim.MaxConns = 10000
	lim.MaxConnsPerIP = 256 // many phones and edges may share a NAT or a load balancer
	return Config{
		Service: svc.Service{
			Listen:          ":8080",
			AdminListen:     "127.0.0.1:8081",
			ShutdownTimeout: 20 * time.Second,
			LogLevel:        "info",
			LogFormat:       "text",
		},
		Limits:                    lim,
		DataDir:                   "/var/lib/hearth-central",
		Schema:                    store.SchemaHearth,
		RetentionDays:             int(hearth.DefaultRetention / (24 * time.Hour)),
		PruneInterval:             time.Hour,
		ClockTolerance:            5 * time.Second,
		MaxBatchBytes:             4 << 20, // an edge sends at most 1 MiB of JSON (forward_batch_bytes)
		MaxBatchDecompressedBytes: 4 << 20,
		MaxBatchMessages:          10000,
		BatchReadTimeout:          2 * time.Minute, // a large batch over a slow home uplink
		StoreTimeout:              30 * time.Second,
		RetryAfter:                15 * time.Second,
		FloodLimits:               DefaultFloodLimits(),
		DBProbeInterval:           5 * time.Second,
	}
}

// BindDB ties the settings every subcommand needs (where the database is)
// to their flags and variables.
func (c *Config) BindDB(b *config.Binder) {
	b.String(&c.DB, "db", `database: sqlite:///path/file.db or postgres://… ("" = sqlite://<data-dir>/`+DBFile+`)`)
	b.String(&c.DataDir, "data-dir", "directory of the default SQLite database")
	b.String(&c.Schema, "schema", `tables to write: hearth (its own) or guardianai (the GuardianAI dashboard's Django tables)`)
}

// Bind ties every setting to its flag and variable.
func (c *Config) Bind(b *config.Binder) {
	c.BindDB(b)
	c.Service.Bind(b, "address for edges and phones (batch API, device protocol, read API)")
	c.Limits.Bind(b)
	b.String(&c.AdminToken, "admin-token", `operator token for the read API ("" = reader tokens only); prefer --admin-token-file or HEARTH_ADMIN_TOKEN: arguments are visible to every local user`)
	b.Int(&c.RetentionDays, "retention-days", "refuse and prune data older than this many days")
	b.Duration(&c.PruneInterval, "prune-interval", "how often old data is pruned")
	b.Duration(&c.ClockTolerance, "clock-tolerance", "an edge clock off by more than this has its times corrected")
	b.Bytes(&c.MaxBatchBytes, "max-batch-bytes", "largest edge batch body as sent (compressed)")
	b.Bytes(&c.MaxBatchDecompressedBytes, "max-batch-decompressed-bytes", "largest edge batch after decompression")
	b.Int(&c.MaxBatchMessages, "max-batch-messages", "most messages in one edge batch")
	b.Duration(&c.BatchReadTimeout, "batch-read-timeout", "time to receive one edge batch body")
	b.Duration(&c.StoreTimeout, "store-timeout", "a database call taking longer answers 503")
	b.Duration(&c.RetryAfter, "retry-after", "Retry-After advised when the database is unavailable")
	b.Int(&c.MaxDBConns, "max-db-conns", "database connections (0 = max(4, CPUs))")
	c.FloodLimits.Bind(b)
	c.bindProduction(b)
}

// DSN returns the database URL: DB, or the SQLite file in DataDir.
func (c *Config) DSN() string {
	if c.DB != "" {
		return c.DB
	}
	return "sqlite://" + filepath.Join(c.DataDir, DBFile)
}

// Retention is the retention window.
func (c *Config) Retention() time.Duration {
	return time.Duration(c.RetentionDays) * 24 * time.Hour
}

// ValidateDB reports a database setting that cannot work.
func (c *Config) ValidateDB() error {
	if c.DB == "" && c.DataDir == "" {
		return errors.New("db: set db or data_dir")
	}
	if c.Schema != store.SchemaHearth && c.Schema != store.SchemaGuardianAI {
		return fmt.Errorf("schema: %q must be %s or %s", c.Schema, store.SchemaHearth, store.SchemaGuardianAI)
	}
	dsn := c.DSN()
	switch {
	case strings.HasPrefix(dsn, "sqlite://"):
		if strings.TrimPrefix(dsn, "sqlite://") == "" {
			return errors.New("db: sqlite:// needs a file path, e.g. sqlite:///var/lib/hearth-central/central.db")
		}
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		if _, err := url.Parse(dsn); err != nil {
			return errors.New("db: the postgres URL does not parse")
		}
	default:
		return fmt.Errorf("db: %q must start with sqlite:// or postgres://", RedactDSN(dsn))
	}
	return nil
}

// Validate reports every setting that cannot work.
func (c *Config) Validate() error {
	errs := append(c.Service.Validate(), c.Limits.Validate()...)
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	if err := c.ValidateDB(); err != nil {
		errs = append(errs, err)
	}
	check(c.AdminToken == "" || len(c.AdminToken) >= 16, "admin_token: must be at least 16 characters (or empty)")
	check(c.RetentionDays > 0, "retention_days: must be positive")
	check(c.ClockTolerance >= 0, "clock_tolerance: must not be negative")
	check(c.MaxBatchBytes >= 1024, "max_batch_bytes: %d is below 1KiB", c.MaxBatchBytes)
	check(c.MaxBatchDecompressedBytes >= c.MaxBatchBytes, "max_batch_decompressed_bytes (%d) must be at least max_batch_bytes (%d)", c.MaxBatchDecompressedBytes, c.MaxBatchBytes)
	check(c.MaxBatchMessages > 0, "max_batch_messages: must be positive")
	check(c.MaxDBConns >= 0, "max_db_conns: must not be negative")
	errs = append(errs, c.FloodLimits.Validate(max(int64(c.MaxBatchDecompressedBytes), int64(ingest.BodyReadLimit(int(c.MaxFrameBytes)))))...)
	for name, d := range map[string]time.Duration{"prune_interval": c.PruneInterval, "store_timeout": c.StoreTimeout,
		"batch_read_timeout": c.BatchReadTimeout, "retry_after": c.RetryAfter} {
		check(d > 0, "%s: must be positive", name)
	}
	errs = append(errs, c.validateProduction()...)
	return errors.Join(errs...)
}

// Write prints the effective configuration's main keys, secrets redacted.
func (c *Config) Write(w io.Writer) {
	admin := "unset"
	if c.AdminToken != "" {
		admin = "set"
	}
	fmt.Fprintf(w, "listen: %s\nadmin_listen: %s\ndb: %s\nschema: %s\nadmin_token: %s\nretention_days: %d\nclock_tolerance: %s\nmax_batch_bytes: %d\nmax_batch_messages: %d\n",
		c.Listen, c.AdminListen, RedactDSN(c.DSN()), c.Schema, admin, c.RetentionDays, c.ClockTolerance, c.MaxBatchBytes, c.MaxBatchMessages)
	c.writeProduction(w)
}

// RedactDSN hides the password of a database URL, for logs and messages.
func RedactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		if err != nil && strings.Contains(dsn, "@") {
			return "(unparsable database URL)"
		}
		return dsn
	}
	return u.Redacted()
}
