// Package fleet is the operator's actions on homes and children, shared
// by hearth-central's command line and its console: each is written to
// the audit log, with who did it, as one line with its own message.
package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/guardianai/hearth/central/store"
)

// Audit log messages, one per action: a log search for one finds them all.
const (
	AuditRotate      = "audit: home token rotated"
	AuditRevoke      = "audit: home token revoked"
	AuditRemoveHome  = "audit: home removed"
	AuditDetachChild = "audit: child detached from its home"
	AuditEraseChild  = "audit: child erased with its data"
	AuditViewChild   = "audit: child data viewed"
	AuditLogin       = "audit: console login"
	AuditLoginFailed = "audit: console login refused"
)

// Ops runs the operator's actions on a store, logging each as Actor.
type Ops struct {
	Store store.Store
	Log   *slog.Logger
	Actor string // "cli" (with the OS user) or "console" (with the client's address)
}

// audit logs one action and its outcome.
func (o Ops) audit(msg string, err error, args ...any) {
	args = append([]any{"actor", o.Actor}, args...)
	if err != nil {
		o.Log.Warn(msg, append(args, "result", "failed", "err", err)...)
		return
	}
	o.Log.Info(msg, append(args, "result", "ok")...)
}

// RotateToken gives a home a new token; the old one is refused at once,
// or after grace. See store.Lifecycle.
func (o Ops) RotateToken(ctx context.Context, home string, grace time.Duration) (string, error) {
	tok, err := o.Store.RotateToken(ctx, home, grace)
	o.audit(AuditRotate, err, "home", home, "grace", grace)
	return tok, err
}

// Revoke refuses a home's tokens at once.
func (o Ops) Revoke(ctx context.Context, home string) error {
	err := o.Store.RevokeHome(ctx, home)
	o.audit(AuditRevoke, err, "home", home)
	return err
}

// RemoveHome deletes a home (with its children's data in hearth's schema).
func (o Ops) RemoveHome(ctx context.Context, home string) (int64, error) {
	n, err := o.Store.RemoveHome(ctx, home)
	o.audit(AuditRemoveHome, err, "home", home, "rows_erased", n)
	return n, err
}

// RemoveChild detaches a child from its home, keeping its data, or with
// erase deletes its data and the child. home must be one of the child's
// homes, so a typo cannot erase another home's child; a child detached
// from every home is no home's, so it is erased by its hash alone (home
// is then "" or its former home, which is not checked).
func (o Ops) RemoveChild(ctx context.Context, home, child string, erase bool) (int64, error) {
	if !erase {
		err := o.Store.DetachChild(ctx, home, child)
		o.audit(AuditDetachChild, err, "home", home, "child", child)
		return 0, err
	}
	homes, known, err := o.Store.ChildHomes(ctx, child)
	if err == nil && (!known || len(homes) > 0 && !slices.Contains(homes, home)) {
		err = fmt.Errorf("child %q in home %q: %w", child, home, store.ErrNotFound)
	}
	var n int64
	if err == nil {
		n, err = o.Store.EraseChild(ctx, child)
	}
	o.audit(AuditEraseChild, err, "home", home, "child", child, "rows_erased", n)
	return n, err
}

// ViewedChild logs that the child's data was shown.
func (o Ops) ViewedChild(home, child string) {
	o.audit(AuditViewChild, nil, "home", home, "child", child)
}

// Home is a home with its edge's and token's state, for listings.
type Home struct {
	store.Home
	Edge store.EdgeState
}

// Homes lists every home with its edge's state: the store's (written at
// most a minute apart, by any replica) or live's when fresher (what this
// replica heard last; nil for none).
func Homes(ctx context.Context, st store.Store, live map[string]store.EdgeState) ([]Home, error) {
	homes, err := st.ListHomes(ctx)
	if err != nil {
		return nil, err
	}
	states, err := st.EdgeStates(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Home, 0, len(homes))
	for _, h := range homes {
		e := states[h.ID]
		if l, ok := live[h.ID]; ok && l.Seen.After(e.Seen) {
			l.Revoked, l.GraceUntil = e.Revoked, e.GraceUntil
			e = l
		}
		if e.Seen.After(h.LastSeen) {
			h.LastSeen = e.Seen
		}
		out = append(out, Home{Home: h, Edge: e})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}
