package household

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// User is the HTTP Basic user name scripts use with the page's password.
const User = "hearth"

//go:embed page.html
var pageFS embed.FS

var pageTmpl = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"bytes": humanBytes,
	"age":   humanAge,
	"ago":   ago,
}).ParseFS(pageFS, "page.html"))

// Options configure the page.
type Options struct {
	Password string          // required; HTTP Basic with user "hearth"
	Snapshot func() Snapshot // what to show, taken per request
	// Retry re-queues the dead letters and says how many; nil hides the
	// retry button.
	Retry   func() (int, error)
	Log     *slog.Logger
	Refresh int // seconds between the page's own refreshes; default 10
}

// Page serves the household's page.
type Page struct {
	o      Options
	csrf   string
	logins *loginThrottle

	mu    sync.Mutex
	flash string // the outcome of the last action, shown once
}

// New returns the page; it refuses an empty password.
func New(o Options) (*Page, error) {
	if o.Password == "" {
		return nil, fmt.Errorf("the household page needs a password (page_password_file or HEARTH_PAGE_PASSWORD)")
	}
	if o.Refresh <= 0 {
		o.Refresh = 10
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Page{o: o, csrf: randomToken(), logins: newLoginThrottle(10, time.Minute)}, nil
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux
	return base64.RawURLEncoding.EncodeToString(b)
}

// Handler serves GET / and POST /retry-dead-letters, behind the password.
func (p *Page) Handler(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: with no-referrer a browser posts the
	// form with "Origin: null", which sameOrigin refuses.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	if !p.authorized(ctx) {
		return
	}
	switch path := string(ctx.Path()); {
	case path == "/" && (ctx.IsGet() || ctx.IsHead()):
		p.servePage(ctx)
	case path == "/retry-dead-letters" && ctx.IsPost():
		p.serveRetry(ctx)
	case path == "/" || path == "/retry-dead-letters":
		fail(ctx, "method not allowed", fasthttp.StatusMethodNotAllowed)
	default:
		fail(ctx, "not found: the page is at /", fasthttp.StatusNotFound)
	}
}

// authorized checks HTTP Basic credentials, throttling an address that
// keeps guessing; it answers the refusal itself.
func (p *Page) authorized(ctx *fasthttp.RequestCtx) bool {
	addr := ctx.RemoteIP().String()
	if !p.logins.allowed(addr) {
		ctx.Response.Header.Set("Retry-After", "60")
		fail(ctx, "too many wrong passwords: wait a minute", fasthttp.StatusTooManyRequests)
		return false
	}
	user, pass, ok := basicAuth(ctx.Request.Header.Peek("Authorization"))
	good := subtle.ConstantTimeCompare([]byte(pass), []byte(p.o.Password)) == 1
	if ok && user == User && good {
		return true
	}
	if ok {
		p.logins.failed(addr)
		p.o.Log.Warn("household page: wrong password", "addr", addr)
	}
	ctx.Response.Header.Set("WWW-Authenticate", `Basic realm="hearth", charset="UTF-8"`)
	fail(ctx, "the page needs the password: user hearth, password from `hearthd page-password`", fasthttp.StatusUnauthorized)
	return false
}

func basicAuth(header []byte) (user, pass string, ok bool) {
	enc, found := bytes.CutPrefix(header, []byte("Basic "))
	if !found {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(string(enc))
	if err != nil {
		return "", "", false
	}
	u, pw, found := bytes.Cut(raw, []byte(":"))
	return string(u), string(pw), found
}

type pageData struct {
	S        Snapshot
	Children []childView
	Dead     []deadView
	CanRetry bool
	CSRF     string
	Flash    string
	Refresh  int
}

type deadView struct{ Child, Kind, Received, Words, Reason string }

func (p *Page) servePage(ctx *fasthttp.RequestCtx) {
	s := p.o.Snapshot()
	d := pageData{S: s, Children: s.childViews(), CanRetry: p.o.Retry != nil && s.DeadTotal > 0,
		CSRF: p.csrf, Flash: p.takeFlash(), Refresh: p.o.Refresh}
	for _, dl := range s.DeadLetters {
		d.Dead = append(d.Dead, deadView{Child: s.childName(dl.Child), Kind: dl.Kind,
			Received: dl.Received.Local().Format("2006-01-02 15:04"), Words: deadWords[dl.Code], Reason: dl.Reason})
	}
	var b bytes.Buffer
	if err := pageTmpl.Execute(&b, d); err != nil {
		p.o.Log.Error("household page: render", "err", err)
		fail(ctx, "the page could not be drawn: "+err.Error(), fasthttp.StatusInternalServerError)
		return
	}
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.SetBody(b.Bytes())
}

// serveRetry runs the retry action. Besides the password it needs the
// page's form token, and a browser's Origin, when sent, must be this
// page's: a site the parent visits cannot make the browser post it.
func (p *Page) serveRetry(ctx *fasthttp.RequestCtx) {
	token := ctx.PostArgs().Peek("csrf")
	if subtle.ConstantTimeCompare(token, []byte(p.csrf)) != 1 || !sameOrigin(ctx) {
		fail(ctx, "refused: the form is stale or came from another site; reload the page", fasthttp.StatusForbidden)
		return
	}
	if p.o.Retry == nil {
		fail(ctx, "retrying dead letters is not available here", fasthttp.StatusNotFound)
		return
	}
	n, err := p.o.Retry()
	switch {
	case err != nil:
		p.setFlash("Retry failed: " + err.Error())
	default:
		p.setFlash(fmt.Sprintf("%d dead letter(s) queued to be sent again.", n))
	}
	p.o.Log.Info("household page: dead letters retried", "count", n, "err", err)
	ctx.Redirect("/", fasthttp.StatusSeeOther)
}

func sameOrigin(ctx *fasthttp.RequestCtx) bool {
	origin := ctx.Request.Header.Peek("Origin")
	if len(origin) == 0 {
		return true // not a browser, or an old one: the form token decides
	}
	u, err := url.Parse(string(origin))
	return err == nil && u.Host == string(ctx.Host())
}

func (p *Page) setFlash(s string) {
	p.mu.Lock()
	p.flash = s
	p.mu.Unlock()
}

func (p *Page) takeFlash() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.flash
	p.flash = ""
	return s
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

func humanAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%.1f h", d.Hours())
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// fail answers a refusal in plain text. Unlike ctx.Error it keeps the
// headers already set (security headers, WWW-Authenticate, Retry-After).
func fail(ctx *fasthttp.RequestCtx, msg string, code int) {
	ctx.SetStatusCode(code)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(msg + "\n")
}

// ago says how long before now t was, in the page's words.
func ago(now, t time.Time) string {
	if d := now.Sub(t); d >= 5*time.Second {
		return humanAge(d) + " ago"
	}
	return "just now"
}
