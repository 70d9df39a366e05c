// Package console is the operator's pages on hearth-central's admin
// listener: every home with its edge's state, a home's children, a child's
// data as charts, and the lifecycle actions. Plain HTML and CSS from
// html/template, no JavaScript, nothing from outside the binary.
package console

import (
	"embed"
	"html/template"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/guardianai/hearth/central/fleet"
	"github.com/guardianai/hearth/central/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

//go:embed templates/*.html templates/style.css
var files embed.FS

// Options are what the console needs of its server.
type Options struct {
	Store store.Store
	// IsAdmin reports whether a token is the admin token; nil, or always
	// false, keeps the console closed (no admin_token configured).
	IsAdmin func(token string) bool
	// Live returns what each home's edge last said to this replica.
	Live     func() map[string]store.EdgeState
	Log      *slog.Logger
	Registry prometheus.Registerer
	Version  string
	Now      func() time.Time // default time.Now
	// SessionTTL is how long a login lasts; default 12 h.
	SessionTTL time.Duration
	// StoreTimeout bounds one page's database work; default 10 s.
	StoreTimeout time.Duration
}

// Login throttle: this many failed logins (or bad bearer tokens) from one
// address in the window lock it out for the rest of the window.
const (
	loginLimit  = 5
	loginWindow = 5 * time.Minute
)

// Cookie names.
const (
	sessionCookie = "hearth_console"
	loginCookie   = "hearth_login" // the login form's CSRF token
)

// Refusal reasons, the label values of hearth_central_console_refused_total.
const (
	RefusedNoSession    = "no_session"
	RefusedBadToken     = "bad_token"
	RefusedThrottled    = "throttled"
	RefusedBadCSRF      = "bad_csrf"
	RefusedConsoleOff   = "no_admin_token"
	RefusedNotConfirmed = "not_confirmed"
)

// Console serves the pages; Handle is its fasthttp handler.
type Console struct {
	o        Options
	pages    map[string]*template.Template
	sessions *sessions
	throttle *throttle
	refused  *prometheus.CounterVec
	css      []byte
}

// New returns a console over o.
func New(o Options) *Console {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	if o.StoreTimeout <= 0 {
		o.StoreTimeout = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	c := &Console{o: o, pages: parsePages(), sessions: newSessions(o.Store, o.SessionTTL), throttle: newThrottle(loginLimit, loginWindow)}
	c.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hearth_central_console_refused_total",
		Help: "Console requests refused, by reason (no_session, bad_token, throttled, bad_csrf, no_admin_token, not_confirmed).",
	}, []string{"reason"})
	for _, r := range []string{RefusedNoSession, RefusedBadToken, RefusedThrottled, RefusedBadCSRF, RefusedConsoleOff, RefusedNotConfirmed} {
		c.refused.WithLabelValues(r)
	}
	if o.Registry != nil {
		o.Registry.MustRegister(c.refused)
	}
	var err error
	if c.css, err = files.ReadFile("templates/style.css"); err != nil {
		panic("BUG: embedded style.css: " + err.Error())
	}
	return c
}

// parsePages parses each page with the layout.
func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{"ago": ago, "count": countText, "secs": secondsText, "offset": offsetText, "short": shortHash,
		"utc": utcText, "pathEscape": url.PathEscape}
	out := map[string]*template.Template{}
	for _, p := range []string{"login", "homes", "home", "child", "detached", "done"} {
		out[p] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+p+".html"))
	}
	return out
}

// who made a request: a browser's session, or a script's bearer token.
type who struct {
	session   *session
	sessionID string
	actor     string
}

// Handle serves the console; the admin listener hands it every path its
// own routes (/metrics, /readyz, …) do not take.
func (c *Console) Handle(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'")
	path := string(ctx.Path())
	switch path {
	case "/style.css":
		ctx.SetContentType("text/css; charset=utf-8")
		ctx.SetBody(c.css)
		return
	case "/login":
		c.serveLogin(ctx)
		return
	case "/favicon.ico": // asked for by every browser; none, and no login redirect
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	w, ok := c.authenticate(ctx)
	if !ok {
		return
	}
	if ctx.IsPost() {
		c.servePost(ctx, w, path)
		return
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set("Allow", "GET, POST")
		textError(ctx, "method not allowed: GET a page, POST an action\n", fasthttp.StatusMethodNotAllowed)
		return
	}
	switch {
	case path == "/":
		c.serveHomes(ctx, w)
	case strings.HasPrefix(path, "/homes/"):
		c.serveHome(ctx, w, strings.TrimPrefix(path, "/homes/"))
	case strings.HasPrefix(path, "/children/"):
		c.serveChild(ctx, w, strings.TrimPrefix(path, "/children/"))
	case path == "/detached":
		c.serveDetached(ctx, w)
	default:
		textError(ctx, "not found: the console has /, /homes/<id>, /children/<hash> and /detached; the admin listener also /metrics, /healthz, /readyz, /status\n",
			fasthttp.StatusNotFound)
	}
}

// refuse counts a refusal and answers it.
func (c *Console) refuse(ctx *fasthttp.RequestCtx, reason string, status int, text string) {
	c.refused.WithLabelValues(reason).Inc()
	textError(ctx, text+"\n", status)
}

// authenticate finds who is asking: a bearer admin token (scripts) or a
// live session cookie (browsers). Otherwise it has answered: 401 for a
// bad token, 429 for a throttled address, a redirect to the login page
// for a browser without a session.
func (c *Console) authenticate(ctx *fasthttp.RequestCtx) (who, bool) {
	now, addr := c.o.Now(), ctx.RemoteIP().String()
	if c.o.IsAdmin == nil {
		c.refuse(ctx, RefusedConsoleOff, fasthttp.StatusForbidden, "the console is off: configure admin_token_file (or admin_token) to log in with the admin token")
		return who{}, false
	}
	if tok, ok := bearer(ctx); ok {
		if wait, blocked := c.throttle.blocked(addr, now); blocked {
			c.throttled(ctx, wait)
			return who{}, false
		}
		if !c.o.IsAdmin(tok) {
			c.throttle.fail(addr, now)
			ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="hearth-central console"`)
			c.refuse(ctx, RefusedBadToken, fasthttp.StatusUnauthorized, "unknown token: the console takes the admin token")
			return who{}, false
		}
		return who{actor: "console-bearer:" + addr}, true
	}
	id := string(ctx.Request.Header.Cookie(sessionCookie))
	dbctx, cancel := c.dbContext()
	defer cancel()
	ses, err := c.sessions.get(dbctx, id, now)
	if err != nil {
		c.failed(ctx, "look up console session", err)
		return who{}, false
	}
	if ses != nil {
		return who{session: ses, sessionID: id, actor: "console:" + ses.addr}, true
	}
	c.refused.WithLabelValues(RefusedNoSession).Inc()
	if ctx.IsGet() || ctx.IsHead() {
		ctx.Redirect("/login", fasthttp.StatusSeeOther)
		return who{}, false
	}
	textError(ctx, "not logged in (or the session expired): log in at /login, or send Authorization: Bearer <admin token>\n", fasthttp.StatusUnauthorized)
	return who{}, false
}

func (c *Console) throttled(ctx *fasthttp.RequestCtx, wait time.Duration) {
	ctx.Response.Header.Set("Retry-After", secondsHeader(wait))
	c.refuse(ctx, RefusedThrottled, fasthttp.StatusTooManyRequests, "too many failed logins from this address: wait "+wait.Round(time.Second).String())
}

// bearer returns the request's bearer token.
func bearer(ctx *fasthttp.RequestCtx) (string, bool) {
	v := string(ctx.Request.Header.Peek("Authorization"))
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:]), true
	}
	return "", false
}

// ops are the audited actions as w.
func (c *Console) ops(w who) fleet.Ops {
	return fleet.Ops{Store: c.o.Store, Log: c.o.Log, Actor: w.actor}
}

// render executes a page with data; a failure is a bug in a template.
func (c *Console) render(ctx *fasthttp.RequestCtx, status int, page string, data any) {
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.SetStatusCode(status)
	if err := c.pages[page].Execute(ctx, data); err != nil {
		c.o.Log.Error("BUG: console page failed to render", "page", page, "err", err)
	}
}
