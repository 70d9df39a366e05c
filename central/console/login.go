package console

import (
	"strconv"
	"time"

	"github.com/guardianai/hearth/central/fleet"
	"github.com/valyala/fasthttp"
)

// loginPage is the data of the login page.
type loginPage struct {
	page
	CSRF  string
	Error string
}

// page is what every page's layout shows.
type page struct {
	Title   string
	Version string
	CSRF    string // the session's; "" on the login page
	Refresh int    // seconds; 0: no refresh
}

// serveLogin shows the form (GET) or checks the admin token (POST). The
// form carries a token that must match the login cookie (a page of another
// site cannot log a browser in), and failures are throttled per address.
func (c *Console) serveLogin(ctx *fasthttp.RequestCtx) {
	if c.o.IsAdmin == nil {
		c.refuse(ctx, RefusedConsoleOff, fasthttp.StatusForbidden, "the console is off: configure admin_token_file (or admin_token) to log in with the admin token")
		return
	}
	switch {
	case ctx.IsPost():
		c.login(ctx)
	case ctx.IsGet() || ctx.IsHead():
		c.loginForm(ctx, fasthttp.StatusOK, "")
	default:
		ctx.Response.Header.Set("Allow", "GET, POST")
		textError(ctx, "method not allowed\n", fasthttp.StatusMethodNotAllowed)
	}
}

func (c *Console) loginForm(ctx *fasthttp.RequestCtx, status int, msg string) {
	// The browser's login token is kept while it lasts: a second tab, or
	// a request the browser makes on its own, must not void the first form.
	csrf := string(ctx.Request.Header.Cookie(loginCookie))
	if len(csrf) != len(randomToken()) {
		csrf = randomToken()
	}
	c.setCookie(ctx, loginCookie, csrf, 10*time.Minute)
	c.render(ctx, status, "login", loginPage{page: page{Title: "Log in", Version: c.o.Version}, CSRF: csrf, Error: msg})
}

func (c *Console) login(ctx *fasthttp.RequestCtx) {
	now, addr := c.o.Now(), ctx.RemoteIP().String()
	if wait, blocked := c.throttle.blocked(addr, now); blocked {
		c.throttled(ctx, wait)
		return
	}
	form := ctx.PostArgs()
	if !sameSecret(string(form.Peek("csrf")), string(ctx.Request.Header.Cookie(loginCookie))) {
		c.refused.WithLabelValues(RefusedBadCSRF).Inc()
		c.loginForm(ctx, fasthttp.StatusForbidden, "The form had expired or came from another page: log in again.")
		return
	}
	if !c.o.IsAdmin(string(form.Peek("token"))) {
		c.throttle.fail(addr, now)
		c.refused.WithLabelValues(RefusedBadToken).Inc()
		c.o.Log.Warn(fleet.AuditLoginFailed, "actor", "console:"+addr, "reason", "wrong admin token")
		c.loginForm(ctx, fasthttp.StatusUnauthorized, "That is not the admin token.")
		return
	}
	dbctx, cancel := c.dbContext()
	defer cancel()
	id, _, err := c.sessions.create(dbctx, addr, now)
	if err != nil {
		c.failed(ctx, "store console session", err)
		return
	}
	c.o.Log.Info(fleet.AuditLogin, "actor", "console:"+addr, "expires", now.Add(c.o.SessionTTL).UTC())
	c.setCookie(ctx, sessionCookie, id, c.o.SessionTTL)
	c.setCookie(ctx, loginCookie, "", -1)
	ctx.Redirect("/", fasthttp.StatusSeeOther)
}

// logout ends the session (a POST with its CSRF token) on every replica.
func (c *Console) logout(ctx *fasthttp.RequestCtx, w who) {
	if w.session != nil {
		dbctx, cancel := c.dbContext()
		defer cancel()
		if err := c.sessions.end(dbctx, w.sessionID); err != nil {
			c.failed(ctx, "end console session", err)
			return
		}
	}
	c.setCookie(ctx, sessionCookie, "", -1)
	ctx.Redirect("/login", fasthttp.StatusSeeOther)
}

// setCookie sets an HttpOnly, SameSite=Strict cookie for the whole
// console; a negative ttl deletes it. It is not Secure: the admin
// listener speaks plain HTTP (on loopback by default).
func (c *Console) setCookie(ctx *fasthttp.RequestCtx, name, value string, ttl time.Duration) {
	var k fasthttp.Cookie
	k.SetKey(name)
	k.SetValue(value)
	k.SetPath("/")
	k.SetHTTPOnly(true)
	k.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	if ttl < 0 {
		k.SetMaxAge(-1)
		k.SetExpire(fasthttp.CookieExpireDelete)
	} else {
		k.SetMaxAge(int(ttl.Seconds()))
	}
	ctx.Response.Header.SetCookie(&k)
}

func secondsHeader(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}
