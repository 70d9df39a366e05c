package console

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/guardianai/hearth/central/store"
	"github.com/valyala/fasthttp"
)

// donePage is the answer to an action in a browser.
type donePage struct {
	page
	Message string
	Token   string // a new token, shown this once
	Back    string
}

// Graces a browser may choose for a rotation (a script may send any).
var graces = map[string]time.Duration{"0": 0, "1h": time.Hour, "24h": 24 * time.Hour, "168h": 7 * 24 * time.Hour}

// servePost runs an action: a browser's must carry its session's CSRF
// token; a script's bearer token cannot be sent by another site's page.
func (c *Console) servePost(ctx *fasthttp.RequestCtx, w who, path string) {
	form := ctx.PostArgs()
	if w.session != nil && !sameSecret(string(form.Peek("csrf")), w.session.csrf) {
		c.refuse(ctx, RefusedBadCSRF, fasthttp.StatusForbidden, "the form's CSRF token is missing or wrong: reload the page and try again")
		return
	}
	if path == "/logout" {
		c.logout(ctx, w)
		return
	}
	// Not derived from the request (fasthttp ends its context only at
	// shutdown); an erase of years of data gets minutes.
	actx, cancel := context.WithTimeout(context.Background(), c.o.StoreTimeout*30)
	defer cancel()
	if child, ok := strings.CutPrefix(path, "/children/"); ok && strings.HasSuffix(child, "/erase") {
		c.eraseDetached(ctx, actx, w, strings.TrimSuffix(child, "/erase"))
		return
	}
	rest, ok := strings.CutPrefix(path, "/homes/")
	if !ok {
		textError(ctx, "not found: actions are POST /homes/<id>/{rotate-token,revoke,remove}, /homes/<id>/children/<hash>/remove and /children/<hash>/erase\n", fasthttp.StatusNotFound)
		return
	}
	home, action, _ := strings.Cut(rest, "/")
	switch {
	case action == "rotate-token":
		c.rotate(ctx, actx, w, home, string(form.Peek("grace")))
	case action == "revoke":
		c.act(ctx, w, home, "Token of home "+home+" revoked; its data stays. Rotate the token to let its edge in again.",
			c.ops(w).Revoke(actx, home))
	case action == "remove":
		if !c.confirmed(ctx) {
			return
		}
		n, err := c.ops(w).RemoveHome(actx, home)
		c.act(ctx, w, "", fmt.Sprintf("Home %s removed (%d data rows erased).", home, n), err)
	case strings.HasPrefix(action, "children/") && strings.HasSuffix(action, "/remove"):
		child := strings.TrimSuffix(strings.TrimPrefix(action, "children/"), "/remove")
		c.removeChild(ctx, actx, w, home, child)
	default:
		textError(ctx, "no such action\n", fasthttp.StatusNotFound)
	}
}

// confirmed refuses a destructive action whose form lacks confirm=yes.
func (c *Console) confirmed(ctx *fasthttp.RequestCtx) bool {
	if string(ctx.PostArgs().Peek("confirm")) == "yes" {
		return true
	}
	c.refuse(ctx, RefusedNotConfirmed, fasthttp.StatusBadRequest, "this deletes data for good: tick the confirmation (confirm=yes)")
	return false
}

func (c *Console) rotate(ctx *fasthttp.RequestCtx, actx context.Context, w who, home, graceText string) {
	grace, ok := graces[graceText]
	if !ok {
		var err error
		if grace, err = time.ParseDuration(graceText); err != nil || grace < 0 || grace > 30*24*time.Hour {
			textError(ctx, "grace: a duration from 0 to 720h, e.g. 24h\n", fasthttp.StatusBadRequest)
			return
		}
	}
	tok, err := c.ops(w).RotateToken(actx, home, grace)
	if err != nil {
		c.act(ctx, w, home, "", err)
		return
	}
	if w.session == nil {
		writeJSON(ctx, map[string]string{"home_id": home, "token": tok})
		return
	}
	msg := "New token for home " + home + ". The old one is refused from now on."
	if grace > 0 {
		msg = fmt.Sprintf("New token for home %s. The old one is accepted until %s, then refused.", home, utcText(c.o.Now().Add(grace)))
	}
	c.render(ctx, fasthttp.StatusOK, "done", donePage{page: c.page("Token rotated", w, 0), Message: msg, Token: tok, Back: "/homes/" + home})
}

func (c *Console) removeChild(ctx *fasthttp.RequestCtx, actx context.Context, w who, home, child string) {
	erase := string(ctx.PostArgs().Peek("erase")) == "yes"
	if erase && !c.confirmed(ctx) {
		return
	}
	n, err := c.ops(w).RemoveChild(actx, home, child, erase)
	if erase {
		c.act(ctx, w, home, fmt.Sprintf("Child %s removed with its data (%d rows erased).", child, n), err)
		return
	}
	c.act(ctx, w, home, "Child "+child+" detached from home "+home+"; its data stays, on its own page until erased there. "+
		"hearth-central child add puts it back in a home with its data.", err, "/children/"+url.PathEscape(child))
}

// eraseDetached erases a child detached from every home (its page offers
// it): no home names it any more.
func (c *Console) eraseDetached(ctx *fasthttp.RequestCtx, actx context.Context, w who, child string) {
	child, err := url.PathUnescape(child)
	if err != nil {
		textError(ctx, "bad child hash in the path\n", fasthttp.StatusBadRequest)
		return
	}
	if !c.confirmed(ctx) {
		return
	}
	n, err := c.ops(w).RemoveChild(actx, "", child, true)
	c.act(ctx, w, "", fmt.Sprintf("Child %s removed with its data (%d rows erased).", child, n), err)
}

// act answers an action's outcome: a page for a browser, JSON for a
// script. The page links back to back[0] when given, else to the home.
func (c *Console) act(ctx *fasthttp.RequestCtx, w who, home, msg string, err error, back ...string) {
	status := fasthttp.StatusOK
	switch {
	case errors.Is(err, store.ErrNotFound):
		status, msg = fasthttp.StatusNotFound, "No such home or child (removed already?)."
	case errors.Is(err, store.ErrUnavailable):
		status, msg = fasthttp.StatusServiceUnavailable, "The database is unavailable; try again in a moment."
	case err != nil:
		c.o.Log.Error("console: action failed", "err", err)
		status, msg = fasthttp.StatusInternalServerError, "The action failed; see hearth-central's log."
	}
	if w.session == nil {
		ctx.SetStatusCode(status)
		writeJSON(ctx, map[string]any{"ok": err == nil, "message": msg})
		return
	}
	to := "/"
	switch {
	case err != nil:
	case len(back) > 0:
		to = back[0]
	case home != "":
		to = "/homes/" + home
	}
	c.render(ctx, status, "done", donePage{page: c.page("Done", w, 0), Message: msg, Back: to})
}
