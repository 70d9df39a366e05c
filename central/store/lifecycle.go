package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Lifecycle is what an operator does over a home's life, beyond adding
// it: rotating and revoking its token, removing it or a child, naming
// children, and keeping what each edge last said of itself. State lives
// in the database, so every replica of central acts on it alike.
type Lifecycle interface {
	// RotateToken gives a home a fresh token and returns it (only its hash
	// is stored). With grace 0 the previous token is refused at once; with
	// a grace period it is still accepted until then (HomeByGraceToken), for
	// a planned rotation. A revoked home is active again with the new
	// token. ErrNotFound for an unknown home.
	RotateToken(ctx context.Context, homeID string, grace time.Duration) (string, error)
	// RevokeHome refuses the home's tokens at once, including one in its
	// grace period; the home, its children and their data stay, and
	// RotateToken issues a new token. ErrNotFound for an unknown home.
	RevokeHome(ctx context.Context, homeID string) error
	// HomeByGraceToken returns the home whose previous token this is while
	// its grace period lasts, or ErrUnauthorized.
	HomeByGraceToken(ctx context.Context, token string) (Home, error)
	// RemoveHome deletes a home with its tokens and readers. In hearth's
	// schema its children and their data go too (in transactions of at most
	// EraseBatch rows), but not a child detached from it before, which is
	// no longer its child; in the GuardianAI schema the children are
	// detached and their data, which belongs to the dashboard's children,
	// stays. It returns how many data rows went. ErrNotFound for an unknown
	// home.
	RemoveHome(ctx context.Context, homeID string) (int64, error)
	// DetachChild removes a child from a home and keeps its data: the
	// roster no longer lists it, the home's child count leaves it out, and
	// its data is refused from the home's edge (CodeForeignChild). Its rows
	// stay readable by hash (ChildHomes: known, in no home) for the admin
	// token and the console, and prune ages them like any other. In hearth's
	// schema a detached child is in no home at all (home_id NULL): it is
	// refused at central's device listener too (ChildHome: not ok), and
	// AddChild puts it back in a home, this one or another, with its data.
	// ErrNotFound when the child is not in that home.
	DetachChild(ctx context.Context, homeID, hash string) error
	// EraseChild deletes a child's data in transactions of at most
	// EraseBatch rows, then the child itself from hearth's tables (in the
	// GuardianAI schema: from every home; accounts_child is never touched),
	// whether it is in a home or detached. It returns how many data rows
	// went. ErrNotFound for an unknown child.
	EraseChild(ctx context.Context, hash string) (int64, error)
	// DetachedChildren returns the children hearth knows that are in no
	// home, with hashes after after, in byte order, at most limit of them
	// (clamped to 1..MaxDetachedPage); more says a next page exists (its
	// cursor is the last hash). In hearth's schema these are the children
	// detached from their home (home_id NULL). In the GuardianAI schema
	// every accounts_child row is "known" and most never were in a hearth
	// home, so it lists the children hearth took out of their last home
	// (DetachChild, RemoveHome) and has not put back in one since
	// (AddChild) nor erased (EraseChild), whose accounts_child row still
	// exists: a dashboard child that never was in a hearth home is the
	// dashboard's, not an operator's loose end.
	DetachedChildren(ctx context.Context, after string, limit int) (kids []DetachedChild, more bool, err error)
	// SetChildName names a child of a home for pages (the roster's names);
	// "" clears it. ErrNotFound when the child is not in that home.
	SetChildName(ctx context.Context, homeID, hash, name string) error
	// ChildNames returns the names of a home's named children, by hash.
	ChildNames(ctx context.Context, homeID string) (map[string]string, error)
	// RecordEdge keeps what the home's edge said of itself at e.Seen, which
	// also becomes the home's LastSeen (a roster sync counts as much as a
	// batch).
	RecordEdge(ctx context.Context, homeID string, e EdgeState) error
	// EdgeStates returns the state of every home's edge and token, by home.
	EdgeStates(ctx context.Context) (map[string]EdgeState, error)
}

// EdgeState is what a home's edge last said of itself (docs/edge-api.md)
// and the state of its token. The counts are -1 when never reported.
type EdgeState struct {
	EdgeID               string
	Version              string
	BacklogMessages      int64
	BacklogOldestSeconds int64
	DeadLetters          int64
	Seen                 time.Time // central's clock; zero when never seen
	Revoked              bool
	GraceUntil           time.Time // the previous token's grace ends; zero when none
}

// DetachedChild is a child in no home, with what an operator needs to
// decide whether to erase its data or put it back in a home. The times
// come from primary-key lookups (the newest key per child), so a page of
// them costs the same whatever the children's history.
type DetachedChild struct {
	Hash string
	Name string // the name it had in its home; "" when none
	// LastData is the device time of its newest location fix or site
	// visit (in the GuardianAI schema: of those hearth keeps keys of);
	// zero when it has none.
	LastData time.Time
	// LastDay is its newest screen-time day (YYYY-MM-DD); "" when none.
	LastDay string
}

// MaxDetachedPage bounds a page of DetachedChildren.
const MaxDetachedPage = 1000

// detachedLimit clamps a page size to 1..MaxDetachedPage.
func detachedLimit(limit int) int {
	return min(max(limit, 1), MaxDetachedPage)
}

// EraseBatch bounds the rows one transaction of EraseChild and RemoveHome
// deletes, so erasing a child with years of data neither holds the
// database's write lock for long nor bloats one transaction.
const EraseBatch = pruneBatch

// maxChildName bounds a child's name.
const maxChildName = 100

// CheckChildName refuses a name pages could not show: too long, or with
// control characters.
func CheckChildName(name string) error {
	if len(name) > maxChildName || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w: a child's name must be at most %d characters, without control characters", ErrInvalid, maxChildName)
	}
	return nil
}

// lcTables names the tables of one schema that the lifecycle touches.
type lcTables struct {
	homes, grace, readers string
	// kids links children to homes: kidsHash and kidsHome are its columns.
	kids, kidsHash, kidsHome string
	// sessions and msgs keep the console's state (console.go).
	sessions, msgs string
}

var (
	hearthTables = lcTables{homes: "homes", grace: "grace_tokens", readers: "readers", kids: "children", kidsHash: "hash", kidsHome: "home_id",
		sessions: "console_sessions", msgs: "home_messages"}
	guardianTables = lcTables{homes: "hearth_homes", grace: "hearth_grace_tokens", readers: "hearth_readers", kids: "hearth_home_children", kidsHash: "child_hash", kidsHome: "home_id",
		sessions: "hearth_console_sessions", msgs: "hearth_home_messages"}
)

// edgeCols are the columns of an EdgeState, in scan order, of home h.
const edgeCols = `h.id, h.edge_id, h.edge_version, h.backlog_messages, h.backlog_oldest_seconds, h.dead_letters,
	h.last_seen, h.revoked_at IS NOT NULL`
