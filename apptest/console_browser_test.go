package apptest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/fleet"
)

// chromium returns the path of a Chromium to drive, skipping the test
// loudly when there is none (HEARTH_REQUIRE_CHROMIUM=1 fails it instead:
// CI installs Debian's chromium).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "NO CHROMIUM: the browser tests of the console did not run (apt-get install chromium)"
	if os.Getenv("HEARTH_REQUIRE_CHROMIUM") == "1" {
		t.Fatal(msg + "; HEARTH_REQUIRE_CHROMIUM=1")
	}
	fmt.Fprintln(os.Stderr, "*** "+msg+" ***")
	t.Skip(msg)
	return ""
}

// artifacts is where screenshots go: $HEARTH_ARTIFACTS/<test> or a
// temporary directory; the path is printed.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if base := os.Getenv("HEARTH_ARTIFACTS"); base != "" {
		dir = filepath.Join(base, t.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// browser starts a headless Chromium; the context ends with the test or
// after a minute.
func browser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// run runs browser actions, failing the test with what it was doing.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	if err := chromedp.Run(ctx, actions...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// screenshot saves the page as name.png in dir.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	var png []byte
	run(t, ctx, "screenshot "+name, chromedp.FullScreenshot(&png, 100))
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Ensure that the operator's console of a real hearth-central, in a real
// browser, shows the numbers of this run (edge, backlog, messages, a
// child's screen time and places), refuses a wrong token, a forged form
// from another site and a form without its CSRF token, and that a token
// rotated there is refused afterwards.
func TestConsole_Browser(t *testing.T) {
	chrome := chromium(t)
	dir := artifacts(t)
	db := CentralSQLite(t)
	home, tok := CentralAddHome(t, db, "The Smiths")
	if out, errs, code := RunCentral(t, db, "child add", "--home", home, "--hash", "kid-ada", "--name", "Ada"); code != 0 {
		t.Fatalf("child add --name: %d %s %s", code, out, errs)
	}
	CentralAddChild(t, db, home, "kid-bo")
	c := StartCentral(t, db, "--admin-token", centralAdminToken)

	// A day of data, then what the edge says of itself.
	edge := map[string]string{hearth.HeaderEdgeID: "router-test", hearth.HeaderEdgeVersion: "4.5.6",
		hearth.HeaderBacklogMessages: "17", hearth.HeaderBacklogOldestSecs: "42", hearth.HeaderDeadLetters: "2"}
	now := time.Now().UTC()
	res := c.mustApply(t, tok, batchBody(now, screenMsg(1, "kid-ada", now, 5400, now), locMsg(2, "kid-ada", now.Add(-time.Hour), 48.85661, now),
		siteMsg(3, "kid-ada", now.Add(-2*time.Hour), now)))
	if res.statuses() != "1:ok 2:ok 3:ok" {
		t.Fatalf("batch: %s", res.statuses())
	}
	// A roster sync last, as an idle edge does: its headers are what the console shows.
	if r := c.Do(t, "GET", hearth.PathEdgeRoster, tok, nil, edge); r.Code != 200 || !strings.Contains(string(r.Body), `"names":{"kid-ada":"Ada"}`) {
		t.Fatalf("roster: %d %s", r.Code, r.Body)
	}

	ctx := browser(t, chrome)
	var text string
	run(t, ctx, "a wrong admin token", chromedp.Navigate(c.Admin+"/"), chromedp.WaitVisible("#token", chromedp.ByID),
		chromedp.SendKeys("#token", "not-the-token", chromedp.ByID), chromedp.Submit("#token", chromedp.ByID),
		chromedp.WaitVisible(".error"), chromedp.Text(".error", &text))
	if !strings.Contains(text, "not the admin token") {
		t.Fatalf("login with a wrong token says %q", text)
	}
	screenshot(t, ctx, dir, "login-refused")

	run(t, ctx, "log in", chromedp.SendKeys("#token", centralAdminToken, chromedp.ByID), chromedp.Submit("#token", chromedp.ByID),
		chromedp.WaitVisible("#homes", chromedp.ByID), chromedp.Text("#home-"+home, &text, chromedp.ByID))
	for _, want := range []string{"The Smiths", "router-test", "4.5.6", "17", "42s", "3", "2"} {
		if !strings.Contains(text, want) {
			t.Errorf("homes row %q lacks %q", text, want)
		}
	}
	var messages string
	run(t, ctx, "messages", chromedp.Text("#home-"+home+" .messages", &messages, chromedp.ByQuery))
	if messages != "3" {
		t.Errorf("messages per day %q, want 3 (this run's batch)", messages)
	}
	screenshot(t, ctx, dir, "homes")

	run(t, ctx, "the home's page", chromedp.Click(`a[href="/homes/`+home+`"]`, chromedp.ByQuery), chromedp.WaitVisible("#children", chromedp.ByID),
		chromedp.Text("#children", &text, chromedp.ByID))
	if !strings.Contains(text, "Ada") || !strings.Contains(text, "kid-bo") {
		t.Fatalf("children table %q", text)
	}
	screenshot(t, ctx, dir, "home")

	run(t, ctx, "the child's page on a phone", chromedp.EmulateViewport(412, 915),
		chromedp.Click(`a[href="/children/kid-ada"]`, chromedp.ByQuery), chromedp.WaitVisible("#per-day svg", chromedp.ByQuery),
		chromedp.Text("main", &text, chromedp.ByQuery))
	for _, want := range []string{"Ada", "1h 30m", "48.85661", "https://example.org", "blocked"} {
		if !strings.Contains(text, want) {
			t.Errorf("child page lacks %q", want)
		}
	}
	var bars int
	run(t, ctx, "count bars", chromedp.Evaluate(`document.querySelectorAll("#per-day svg rect").length`, &bars))
	if bars != 14 {
		t.Errorf("%d bars per day, want 14", bars)
	}
	screenshot(t, ctx, dir, "child-phone")
	if _, err := c.WaitLog(fleet.AuditViewChild, 5*time.Second); err != nil {
		t.Fatalf("viewing the child is not in the audit log: %v", err)
	}

	// Another site's page posting to the console: SameSite=Strict keeps
	// the session cookie home, so the action is refused.
	forged := `<form method="post" action="` + c.Admin + `/homes/` + home + `/revoke"><input name="csrf" value="x"></form>` +
		`<script>document.forms[0].submit()</script>`
	run(t, ctx, "a forged cross-site form", chromedp.EmulateViewport(1280, 900), chromedp.Navigate("data:text/html,"+url.PathEscape(forged)),
		chromedp.WaitVisible("body > pre", chromedp.ByQuery), chromedp.Text("body", &text, chromedp.ByQuery))
	if !strings.Contains(text, "not logged in") {
		t.Fatalf("a cross-site form was answered %q", text)
	}
	// The console's own form with its CSRF token altered.
	run(t, ctx, "a form without its CSRF token", chromedp.Navigate(c.Admin+"/homes/"+home), chromedp.WaitVisible("#children", chromedp.ByID),
		chromedp.Evaluate(`document.querySelector('form[action$="/revoke"] input[name=csrf]').value = "forged"`, nil),
		chromedp.Click(`form[action$="/revoke"] button`, chromedp.ByQuery),
		chromedp.WaitVisible("body > pre", chromedp.ByQuery), chromedp.Text("body", &text, chromedp.ByQuery))
	if !strings.Contains(text, "CSRF token is missing or wrong") {
		t.Fatalf("a form without its CSRF token was answered %q", text)
	}
	if r := c.Do(t, "GET", hearth.PathEdgeRoster, tok, nil, nil); r.Code != 200 {
		t.Fatalf("the home's token after refused revokes: %d", r.Code)
	}

	// Rotate the token without grace: the old one is refused at once.
	var newTok string
	run(t, ctx, "rotate the token", chromedp.Navigate(c.Admin+"/homes/"+home), chromedp.WaitVisible("#grace", chromedp.ByID),
		chromedp.SetValue("#grace", "0", chromedp.ByID), chromedp.Click(`form[action$="/rotate-token"] button`, chromedp.ByQuery),
		chromedp.WaitVisible("#token", chromedp.ByID), chromedp.Text("#token", &newTok, chromedp.ByID))
	if r := c.Do(t, "GET", hearth.PathEdgeRoster, tok, nil, nil); r.Code != 401 {
		t.Fatalf("the old token after a rotation: %d, want 401", r.Code)
	}
	if r := c.Do(t, "GET", hearth.PathEdgeRoster, strings.TrimSpace(newTok), nil, nil); r.Code != 200 {
		t.Fatalf("the new token: %d", r.Code)
	}
	if _, err := c.WaitLog(fleet.AuditRotate, 5*time.Second); err != nil {
		t.Fatalf("the rotation is not in the audit log: %v", err)
	}
	run(t, ctx, "the home after rotation", chromedp.Navigate(c.Admin+"/"), chromedp.WaitVisible("#homes", chromedp.ByID))
	screenshot(t, ctx, dir, "homes-after-rotation")
}
