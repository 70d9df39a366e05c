package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/guardianai/hearth"
)

// Ensure that child list --detached lists the children in no home with
// their kept name and newest data, pages with --after and --limit (saying
// on stderr how to get the next page), prints JSON with --json, and
// refuses --detached with --home and paging flags without --detached.
func TestCLI_ChildListDetached(t *testing.T) {
	db, home := cliSmiths(t)
	id := home["home_id"]
	for _, k := range []string{"kid-1", "kid-2", "kid-3"} {
		if _, errs, code := cli(t, "child", "add", "--home", id, "--hash", k, "--name", "name of "+k); code != 0 {
			t.Fatalf("child add %s: %d %s", k, code, errs)
		}
	}
	fix := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	st := openCLIStore(t, db)
	res, err := st.Apply(context.Background(), id, []hearth.Message{{ChildHash: "kid-1", Kind: hearth.KindLocation,
		ReceivedAt: time.Now(), Via: hearth.ViaWS,
		Data: []byte(fmt.Sprintf(`{"timestamp":%q,"latitude":1,"longitude":2}`, fix.Format(time.RFC3339)))}})
	if err != nil || res[0].Status != "ok" {
		t.Fatalf("storing kid-1's fix: %+v %v", res, err)
	}
	if out, _, code := cli(t, "child", "list", "--detached"); code != 0 || strings.Contains(out, "kid-") {
		t.Fatalf("child list --detached with every child in a home: %d\n%s", code, out)
	}
	for _, k := range []string{"kid-1", "kid-2"} {
		if _, errs, code := cli(t, "child", "remove", "--home", id, k); code != 0 {
			t.Fatalf("detach %s: %d %s", k, code, errs)
		}
	}

	out, errs, code := cli(t, "child", "list", "--detached")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "HASH") || errs != "" {
		t.Fatalf("child list --detached: %d, stderr %q\n%s", code, errs, out)
	}
	if f := strings.Fields(lines[1]); f[0] != "kid-1" || !strings.Contains(lines[1], "name of kid-1") || !strings.Contains(lines[1], fix.Format(time.RFC3339)) {
		t.Fatalf("kid-1's line: %q; want its name and its fix's time %s", lines[1], fix.Format(time.RFC3339))
	}
	if f := strings.Fields(lines[2]); f[0] != "kid-2" || f[len(f)-1] != "-" {
		t.Fatalf("kid-2's line: %q; want no data", lines[2])
	}

	out, errs, code = cli(t, "child", "list", "--detached", "--limit", "1")
	if code != 0 || !strings.Contains(out, "kid-1") || strings.Contains(out, "kid-2") || !strings.Contains(errs, "--after kid-1") {
		t.Fatalf("first page of one: %d, stderr %q\n%s", code, errs, out)
	}
	var page DetachedPageJSON
	cliJSON(t, &page, "child", "list", "--detached", "--json", "--limit", "1", "--after", "kid-1")
	if len(page.Children) != 1 || page.Children[0].ChildHash != "kid-2" || page.Children[0].Name != "name of kid-2" ||
		page.Children[0].LastData != nil || page.More || page.Next != "" {
		t.Fatalf("second page as JSON: %+v", page)
	}
	cliJSON(t, &page, "child", "list", "--detached", "--json", "--limit", "1")
	if !page.More || page.Next != "kid-1" || page.Children[0].LastData == nil || !page.Children[0].LastData.Equal(fix) {
		t.Fatalf("first page as JSON: %+v", page)
	}

	for _, bad := range [][]string{
		{"child", "list", "--detached", "--home", id},
		{"child", "list", "--detached", "--limit", "0"},
		{"child", "list", "--home", id, "--after", "kid-1"},
		{"child", "list", "--home", id, "--limit", "5"},
	} {
		if _, errs, code := cli(t, bad...); code != 2 || errs == "" {
			t.Fatalf("%q: exit %d, stderr %q; want a usage error", bad, code, errs)
		}
	}
}
