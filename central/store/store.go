// Package store keeps central's data in SQL with update_or_create semantics
// (docs/protocol.md): one schema and one behaviour on SQLite and on PostgreSQL.
package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/guardianai/hearth"
)

// Store is central's database. Implementations are safe for concurrent use.
type Store interface {
	// Apply upserts msgs in one transaction and returns one Result per
	// message, in order. home "" skips the tenancy check (direct device
	// ingest); otherwise a message for a child of another home is rejected
	// and never stored. The rows are written from each message's typed
	// Payload, which the caller has checked (central's batch path checks it
	// against the message's own received_at); a message with only Data is
	// checked here against the retention window, so stale data is rejected
	// with a reason. A
	// message whose rows lose against newer stored rows is still "ok": the
	// store holds the newest truth per key. The error is non-nil only when
	// nothing was stored; it wraps ErrUnavailable when retrying later may
	// succeed. With a home, the messages stored are counted for it in the
	// same transaction (HomeMessages).
	Apply(ctx context.Context, home string, msgs []hearth.Message) ([]Result, error)

	// AddHome creates a home and returns its id and a fresh bearer token.
	// Only a hash of the token is stored: it cannot be shown again.
	AddHome(ctx context.Context, name string) (homeID, token string, err error)
	// ListHomes returns every home, oldest first.
	ListHomes(ctx context.Context) ([]Home, error)
	// HomeByToken returns the home owning token, or ErrUnauthorized.
	HomeByToken(ctx context.Context, token string) (Home, error)
	// AddReader creates a reader token for a home and returns its id and
	// the token. A reader token reads the home's children's data and can do
	// nothing else; only its hash is stored. ErrNotFound for an unknown home.
	AddReader(ctx context.Context, homeID string) (readerID, token string, err error)
	// ReaderByToken returns the home whose children a reader token may
	// read, or ErrUnauthorized.
	ReaderByToken(ctx context.Context, token string) (homeID string, err error)
	// RecordClockOffset stores the edge's clock offset (edge minus central)
	// measured at time at, which also becomes the home's LastSeen.
	RecordClockOffset(ctx context.Context, homeID string, offset time.Duration, at time.Time) error

	// AddChild adds a child to a home and returns its hash. hash "" makes a
	// fresh URL-safe random one; a given hash must be 1-128 characters of
	// [A-Za-z0-9._~-]. The hash of a child detached from its home
	// (DetachChild) puts it in this home, with the data it kept. ErrExists
	// for a hash a home has, ErrNotFound for an unknown home.
	AddChild(ctx context.Context, homeID, hash string) (string, error)
	// Children returns the child hashes of a home, sorted; ErrNotFound for
	// an unknown home.
	Children(ctx context.Context, homeID string) ([]string, error)
	// ChildHome returns the home of a child; ok is false for an unknown
	// child and, in hearth's schema, for one detached from its home (no
	// roster has it). Central's device listener takes what it says.
	ChildHome(ctx context.Context, hash string) (homeID string, ok bool, err error)
	// ChildHomes returns every home of a child, sorted: in the GuardianAI
	// schema a child may belong to several homes, or to none and still be
	// known (it sends straight to central); in hearth's a child has one
	// home, or none once detached, its data kept. ok is false for an
	// unknown child.
	ChildHomes(ctx context.Context, hash string) (homes []string, ok bool, err error)
	// Stats counts rows per table: homes, children, screen_time,
	// app_screen_time, locations, site_access.
	Stats(ctx context.Context) (map[string]int64, error)

	// ScreenTime returns a child's days in [from, to] (YYYY-MM-DD, both
	// inclusive), oldest first, each with its per-app, per-hour seconds.
	ScreenTime(ctx context.Context, child, from, to string) ([]ScreenTimeDay, error)
	// Locations returns a child's fixes with from <= timestamp <= to, oldest first.
	Locations(ctx context.Context, child string, from, to time.Time) ([]hearth.Location, error)
	// SiteAccess returns a child's visits with from <= timestamp <= to,
	// ordered by timestamp then URL.
	SiteAccess(ctx context.Context, child string, from, to time.Time) ([]hearth.SiteVisit, error)
	// Paged reads those ranges a page at a time (the read API).
	Paged

	// Prune deletes data whose device time is older than before and returns
	// how many rows went. A day is kept while Apply would still accept it
	// (Apply allows a day of slack for the phone's local date), so a prune
	// at now-Retention never deletes what was just acked. It also deletes
	// the message counts of hours older than HomeMessagesKept (they are not
	// data rows and not in the count it returns).
	Prune(ctx context.Context, before time.Time) (int64, error)
	// Ping checks that the database answers; it wraps ErrUnavailable otherwise.
	Ping(ctx context.Context) error
	// ProbeWrite rewrites the one-row heartbeat table: nil means the
	// database takes a write now. The error says why not (a read-only
	// file, its owner and mode; a read-only server; a full disk).
	ProbeWrite(ctx context.Context) error
	Close() error

	Lifecycle    // lifecycle.go
	ConsoleState // console.go
}

// Result is the outcome of one message of Apply.
type Result struct {
	Status string // StatusOK or StatusRejected
	Error  string // the reason of a rejection, for the sender
	Code   string // a metric label of a rejection: one of the Code constants
}

// Result statuses.
const (
	StatusOK       = "ok"
	StatusRejected = "rejected"
)

// Codes of rejected Results. Invalid payloads carry the code of
// hearth.InvalidError (hearth.CodeInvalid, CodeTooOld, CodeFuture,
// CodeUnknownType).
const (
	CodeUnknownChild = "unknown_child"
	CodeForeignChild = "foreign_child"
)

// Home is one household running an edge.
type Home struct {
	ID          string
	Name        string
	CreatedAt   time.Time
	ClockOffset time.Duration // edge clock minus central clock, last measured
	LastSeen    time.Time     // zero until the edge first reported
	Children    int
}

// ScreenTimeDay is a child's screen time of one day as stored: the day total
// and the seconds per app and hour (the seed's app_wise_data).
type ScreenTimeDay struct {
	Date         string                   `json:"date"`
	TotalSeconds int64                    `json:"total_screen_time"`
	Apps         map[string]map[int]int64 `json:"app_wise_data"`
	ReceivedAt   time.Time                `json:"received_at"` // of the day total
}

// ErrUnauthorized means a token matches no home.
var ErrUnauthorized = errors.New("unknown token")

// ErrNotFound means the home (or other object) named does not exist.
var ErrNotFound = errors.New("not found")

// ErrExists means an object with that key exists already.
var ErrExists = errors.New("already exists")

// ErrInvalid means an argument is malformed (an empty name, a bad child
// hash or date).
var ErrInvalid = errors.New("invalid argument")

// ErrUnavailable means the database cannot be reached or cannot take the
// write now; retrying later may succeed. It is hearth.ErrUnavailable, so
// the device protocol answers such failures with "retry later".
var ErrUnavailable = hearth.ErrUnavailable

// ErrSchemaTooNew means the database was migrated by a newer hearth-central.
var ErrSchemaTooNew = errors.New("database schema is newer than this hearth-central")

// Options tune a Store; the zero value means the defaults.
type Options struct {
	Retention time.Duration    // data older than this is refused; default hearth.DefaultRetention
	MaxFuture time.Duration    // data further ahead is refused; default hearth.DefaultMaxFuture
	Now       func() time.Time // the clock; default time.Now
	MaxConns  int              // PostgreSQL pool size, SQLite readers; default max(4, GOMAXPROCS)
	Schema    string           // SchemaHearth (default) or SchemaGuardianAI

	// PostgreSQL pool: a request that waits longer than ConnWait for a
	// connection fails with ErrBusy (default 1 s); connections are closed
	// after ConnLifetime (default 30 min, so a failover or a new
	// pg_hba.conf reaches every connection) or ConnIdleTime idle (default
	// 5 min), and idle ones are checked every HealthCheckPeriod (default 30 s).
	ConnWait time.Duration
	// WriterWait, when positive, is ConnWait's counterpart on SQLite: a
	// batch that waits longer for the single writer (behind other
	// batches) fails with ErrBusy. 0: it waits as long as its context.
	WriterWait        time.Duration
	ConnLifetime      time.Duration
	ConnIdleTime      time.Duration
	HealthCheckPeriod time.Duration
}

func (o Options) withDefaults() Options {
	if o.Retention <= 0 {
		o.Retention = hearth.DefaultRetention
	}
	if o.MaxFuture <= 0 {
		o.MaxFuture = hearth.DefaultMaxFuture
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxConns <= 0 {
		o.MaxConns = max(4, runtime.GOMAXPROCS(0))
	}
	o.ConnWait = positiveOr(o.ConnWait, time.Second)
	o.ConnLifetime = positiveOr(o.ConnLifetime, 30*time.Minute)
	o.ConnIdleTime = positiveOr(o.ConnIdleTime, 5*time.Minute)
	o.HealthCheckPeriod = positiveOr(o.HealthCheckPeriod, 30*time.Second)
	return o
}

func positiveOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Open opens the database named by dsn with default Options and applies
// pending migrations. See OpenWith.
func Open(ctx context.Context, dsn string) (Store, error) {
	return OpenWith(ctx, dsn, Options{})
}

// OpenWith opens the database named by dsn and applies pending migrations.
// dsn is "sqlite:///abs/path.db", "sqlite://relative/path.db", or a
// "postgres://" / "postgresql://" URL as pgx understands it.
func OpenWith(ctx context.Context, dsn string, opts Options) (Store, error) {
	opts = opts.withDefaults()
	if err := checkSchema(opts.Schema); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	ga := opts.Schema == SchemaGuardianAI
	switch {
	case strings.HasPrefix(dsn, "sqlite://") && ga:
		return OpenGuardianSQLite(ctx, strings.TrimPrefix(dsn, "sqlite://"), opts)
	case strings.HasPrefix(dsn, "sqlite://"):
		return OpenSQLite(ctx, strings.TrimPrefix(dsn, "sqlite://"), opts)
	case (strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")) && ga:
		return OpenGuardianPostgres(ctx, dsn, opts)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return OpenPostgres(ctx, dsn, opts)
	}
	return nil, fmt.Errorf("open store: %w: database URL must start with sqlite:// or postgres://", ErrInvalid)
}

// Migrate applies pending migrations to the database named by dsn and
// closes it again (`hearth-central migrate`).
func Migrate(ctx context.Context, dsn string) error {
	s, err := OpenWith(ctx, dsn, Options{})
	if err != nil {
		return err
	}
	return s.Close()
}
