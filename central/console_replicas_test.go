package central

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/store/pgtest"
)

// replicaBrowser is a browser with cookies that does not follow
// redirects. Its cookie jar sends the cookies of 127.0.0.1 to every port,
// as one load balancer's address in front of the replicas would.
type replicaBrowser struct {
	t *testing.T
	c *http.Client
}

func newReplicaBrowser(t *testing.T) *replicaBrowser {
	jar, _ := cookiejar.New(nil)
	return &replicaBrowser{t: t, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *replicaBrowser) do(method, u string, form url.Values) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(form.Encode()))
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var formCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of a page's form.
func (b *replicaBrowser) csrf(page string) string {
	b.t.Helper()
	m := formCSRF.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("page without a CSRF field:\n%s", page)
	}
	return m[1]
}

// sessionCookie returns the console's session cookie the browser holds for u.
func sessionCookie(t *testing.T, b *replicaBrowser, u string) *http.Cookie {
	t.Helper()
	pu, _ := url.Parse(u)
	for _, k := range b.c.Jar.Cookies(pu) {
		if k.Name == "hearth_console" {
			return k
		}
	}
	t.Fatal("no session cookie after the login")
	return nil
}

// getWithCookie GETs u with only that cookie and returns the status.
func getWithCookie(t *testing.T, u string, k *http.Cookie) int {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.AddCookie(k)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Ensure that two replicas of central on one database share the
// console's state: a login on one is accepted by the other (with the same
// CSRF token), a logout on one ends the session on both, and after edge
// batches through each both show the same messages of the last 24 hours.
func TestServer_ConsoleAcrossReplicas(t *testing.T) {
	dbs := []struct {
		name    string
		dsn     func(testing.TB) string
		require func(testing.TB)
	}{
		{"SQLite", func(t testing.TB) string { return "sqlite://" + filepath.Join(t.TempDir(), "central.db") }, func(testing.TB) {}},
		{"Postgres", pgtest.DSN, pgtest.Require},
	}
	for _, db := range dbs {
		t.Run(db.name, func(t *testing.T) {
			db.require(t)
			dsn := db.dsn(t)
			var reps [2]*Server
			for i := range reps {
				cfg := newTestConfig(t)
				cfg.DB, cfg.AdminToken = dsn, testAdminToken
				reps[i] = startWith(t, cfg, nil, nil)
			}
			ctx := context.Background()
			home, tok, err := reps[0].store.AddHome(ctx, "The Smiths")
			if err != nil {
				t.Fatal(err)
			}
			child, err := reps[0].store.AddChild(ctx, home, "")
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC()
			for i, n := range []int{2, 1} {
				var msgs []string
				for j := range n {
					msgs = append(msgs, location(j+1, child, now.Add(-time.Duration(10*i+j)*time.Second)))
				}
				body := fmt.Sprintf(`{"edge_id":"e","sent_at":%q,"messages":[%s]}`, now.Format(time.RFC3339Nano), strings.Join(msgs, ","))
				if code, reply := do(t, nil, "POST", "http://"+reps[i].Addr()+hearth.PathEdgeBatches, tok, []byte(body)); code != 200 ||
					strings.Count(reply, `"ok"`) != n {
					t.Fatalf("batch through replica %d: %d %s", i+1, code, reply)
				}
			}

			b := newReplicaBrowser(t)
			admin := func(i int) string { return "http://" + reps[i].AdminAddr() }
			_, page := b.do("GET", admin(0)+"/login", nil)
			if code, _ := b.do("POST", admin(0)+"/login", url.Values{"csrf": {b.csrf(page)}, "token": {testAdminToken}}); code != http.StatusSeeOther {
				t.Fatalf("login on replica 1: %d", code)
			}
			var csrf [2]string
			for i := range reps {
				code, page := b.do("GET", admin(i)+"/", nil)
				if code != 200 || !strings.Contains(page, "The Smiths") || !strings.Contains(page, `<td class="num messages">3</td>`) {
					t.Fatalf("homes page of replica %d after the login on replica 1: %d, want 200 with 3 messages\n%s", i+1, code, page)
				}
				csrf[i] = b.csrf(page)
			}
			if csrf[0] != csrf[1] {
				t.Fatalf("the session's CSRF token differs between replicas: %q, %q", csrf[0], csrf[1])
			}
			session := sessionCookie(t, b, admin(0))
			if code := getWithCookie(t, admin(1)+"/", session); code != 200 {
				t.Fatalf("replica 2 with the session cookie of replica 1: %d, want 200", code)
			}
			if code, _ := b.do("POST", admin(1)+"/logout", url.Values{"csrf": {csrf[0]}}); code != http.StatusSeeOther {
				t.Fatalf("logout on replica 2: %d", code)
			}
			for i := range reps {
				// The browser dropped the cookie; one replayed must not work either.
				if code := getWithCookie(t, admin(i)+"/", session); code != http.StatusSeeOther {
					t.Fatalf("replica %d with the session cookie after the logout on replica 2: %d, want 303 to the login", i+1, code)
				}
			}
		})
	}
}
