package apptest

import (
	"encoding/base64"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/guardianai/hearth/ingest/ingesttest"
	"github.com/guardianai/hearth/internal/testutil"
)

const pagePassword = "family-page-pw"

// Ensure that the household's page of a real hearthd forwarding to a real
// central, in a real browser, needs its password and shows the numbers of
// this run in plain words: the phone connected now, the child by the name
// central gives, today's counts, a refusal with what to do, the link to
// central — on a desktop and on a phone's screen.
func TestHouseholdPage_Browser(t *testing.T) {
	chrome := chromium(t)
	dir := artifacts(t)
	db := CentralSQLite(t)
	home, tok := CentralAddHome(t, db, "The Smiths")
	if out, errs, code := RunCentral(t, db, "child add", "--home", home, "--hash", "kid-ada", "--name", "Ada"); code != 0 {
		t.Fatalf("child add --name: %d %s %s", code, out, errs)
	}
	c := StartCentral(t, db)
	d := StartHearthd(t, t.TempDir(), "--central-url", c.URL, "--central-token-file", writeSecret(t, "central-token", tok),
		"--forward-replay-jitter", "0s", "--edge-id", "smiths-router",
		"--page-listen", "127.0.0.1:0", "--page-password-file", writeSecret(t, "page-password", pagePassword))
	ready, _ := d.WaitLog("hearthd ready", time.Second)
	page := "http://" + ready["page"].(string) + "/"

	// Ada's phone: 3 locations and a screen time acked, one location the
	// edge cannot read; it stays connected.
	phone := ingesttest.MustDial(t, ingesttest.Target{URL: d.URL}, "/ws/ingest/kid-ada/")
	phone.Expect("connection_established")
	for range 3 {
		phone.Send(ingesttest.Frame("location", ingesttest.LocationData(0)))
		phone.ExpectAck("location")
	}
	phone.Send(ingesttest.Frame("screen_time", ingesttest.ScreenTimeData()))
	phone.ExpectAck("screen_time")
	phone.Send(ingesttest.Frame("location", `{"timestamp":"`+time.Now().UTC().Format(time.RFC3339)+`","latitude":91,"longitude":0}`))
	phone.ExpectErrorCode("invalid")
	// A phone of a child this home does not have.
	if _, resp, err := ingesttest.Dial(t, ingesttest.Target{URL: d.URL}, "/ws/ingest/kid-stranger/"); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("a stranger's phone was admitted")
	}

	ctx := browser(t, chrome)
	var text string
	// Without the password the browser is asked for it (headless, it
	// cannot answer, so the load fails on the credentials).
	if err := chromedp.Run(ctx, chromedp.Navigate(page)); err == nil || !strings.Contains(err.Error(), "AUTH") {
		t.Fatalf("the page without the password: %v, want an authentication failure", err)
	}
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("hearth:"+pagePassword))
	run(t, ctx, "log in", network.Enable(), network.SetExtraHTTPHeaders(network.Headers{"Authorization": auth}))
	// The link shows "sending" once the edge has forwarded to central.
	deadline := time.Now().Add(20 * time.Second)
	for {
		run(t, ctx, "the page", chromedp.Navigate(page), chromedp.WaitVisible("#summary", chromedp.ByID), chromedp.Text("body", &text, chromedp.ByQuery))
		if strings.Contains(text, "Waiting to be sent: 0 messages") && strings.Contains(text, "sending") || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, want := range []string{
		"1 phone connected now",
		"Link to central: sending to " + c.URL,
		"Waiting to be sent: 0 messages",
		"Ada", "last message",
		"hearth cannot read", "(invalid)",
		"kid-strang", "not on this home's list",
		"None: everything received was sent on",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the page lacks %q:\n%s", want, text)
		}
	}
	var counts []string
	run(t, ctx, "Ada's counts", chromedp.Evaluate(`Array.from(document.querySelectorAll(".child")).filter(c => c.textContent.includes("Ada"))[0].querySelectorAll("td.count").length`, nil),
		chromedp.Evaluate(`Array.from(Array.from(document.querySelectorAll(".child")).filter(c => c.textContent.includes("Ada"))[0].querySelectorAll("td.count")).map(td => td.textContent)`, &counts))
	if strings.Join(counts, ",") != "1,3,0" {
		t.Errorf("Ada's counts (screen time, locations, sites) = %v, want 1,3,0", counts)
	}
	screenshot(t, ctx, dir, "household")
	run(t, ctx, "on a phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(page), chromedp.WaitVisible("#summary", chromedp.ByID))
	var overflow bool
	run(t, ctx, "fits the phone", chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth`, &overflow))
	if overflow {
		t.Error("the page is wider than a phone's screen")
	}
	screenshot(t, ctx, dir, "household-phone")
}

// Ensure that the household page shows dead letters with central's reason
// and that its retry button, in a real browser, sends them again: data a
// phone sent while the edge ran standalone, for a child central did not
// know, is set aside once the edge forwards; after the child is added at
// central, one click stores it there.
func TestHouseholdPage_Browser_DeadLetterRetry(t *testing.T) {
	const child, n = "kid-added-late", 2
	chrome := chromium(t)
	dir := artifacts(t)
	data := t.TempDir()
	pw := writeSecret(t, "page-password", pagePassword)
	pageArgs := []string{"--page-listen", "127.0.0.1:0", "--page-password-file", pw}

	standalone := StartHearthd(t, data, pageArgs...)
	phone := ingesttest.MustDial(t, ingesttest.Target{URL: standalone.URL}, "/ws/ingest/"+child+"/")
	phone.Expect("connection_established")
	for i := range n {
		phone.Send(ingesttest.Frame("location", ingesttest.LocationData(i)))
		phone.ExpectAck("location")
	}
	phone.Close()
	standalone.Signal(syscall.SIGTERM)
	if err := standalone.Wait(15 * time.Second); err != nil {
		t.Fatal(err)
	}

	c := StartCentral(t, CentralSQLite(t))
	home, tok := CentralAddHome(t, c.DB, "late")
	d := StartHearthd(t, data, append(pageArgs, "--central-url", c.URL, "--central-token", tok,
		"--forward-replay-jitter", "0s", "--forward-max-backoff", "500ms", "--outbox-settle-delay", "50ms")...)
	testutil.WaitFor(t, 15*time.Second, func() error {
		if got := statusNumber(t, d, "dead_letters"); got != n {
			return fmt.Errorf("%v dead letters", got)
		}
		return nil
	})
	ready, _ := d.WaitLog("hearthd ready", time.Second)
	page := "http://" + ready["page"].(string) + "/"

	ctx := browser(t, chrome)
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("hearth:"+pagePassword))
	var text string
	run(t, ctx, "the page with dead letters", network.Enable(), network.SetExtraHTTPHeaders(network.Headers{"Authorization": auth}),
		chromedp.Navigate(page), chromedp.WaitVisible("#dead", chromedp.ByID), chromedp.Text("#dead", &text, chromedp.ByID))
	if !strings.Contains(text, fmt.Sprintf("%d messages were set aside", n)) || !strings.Contains(text, "unknown child") || !strings.Contains(text, "add the child at central") {
		t.Fatalf("dead letters on the page: %q", text)
	}
	screenshot(t, ctx, dir, "dead-letters")

	CentralAddChild(t, c.DB, home, child)
	run(t, ctx, "retry", chromedp.Click("#retry", chromedp.ByID), chromedp.WaitVisible("#flash", chromedp.ByID),
		chromedp.Text("#flash", &text, chromedp.ByID))
	if !strings.Contains(text, fmt.Sprintf("%d dead letter(s) queued to be sent again", n)) {
		t.Fatalf("after retry the page says %q", text)
	}
	testutil.WaitFor(t, 15*time.Second, func() error {
		if got := CentralStats(t, c.DB)["locations"]; got != n {
			return fmt.Errorf("central holds %d locations, want %d", got, n)
		}
		return nil
	})
	run(t, ctx, "the page after the retry", chromedp.Navigate(page), chromedp.WaitVisible("#dead-none", chromedp.ByID))
	screenshot(t, ctx, dir, "dead-letters-retried")
}
