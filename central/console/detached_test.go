package console

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Ensure that the homes page links to the children in no home, which
// lists a detached child with its kept name (escaped) and newest data,
// linking to its page, a page of detachedPageSize at a time; a child in a
// home is not listed.
func TestConsole_DetachedChildren(t *testing.T) {
	w := newWorld(t)
	c := w.browser()
	w.login(c)
	ctx := context.Background()
	if _, page := w.do(c, "GET", "/", nil); !strings.Contains(page, `href="/detached"`) {
		t.Fatalf("homes page without a link to the children in no home:\n%s", page)
	}
	resp, page := w.do(c, "GET", "/detached", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, "every child central knows is in a home") || strings.Contains(page, w.child) {
		t.Fatalf("children in no home while all are in one: %d\n%s", resp.StatusCode, page)
	}

	if err := w.st.DetachChild(ctx, w.home, w.child); err != nil {
		t.Fatal(err)
	}
	resp, page = w.do(c, "GET", "/detached", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, `href="/children/`+w.child+`"`) || !strings.Contains(page, "Ada &lt;b&gt;") ||
		!strings.Contains(page, "1h ago") || !strings.Contains(page, w.now.Format("2006-01-02")) || strings.Contains(page, `id="next"`) {
		t.Fatalf("children in no home after detaching Ada: %d\n%s", resp.StatusCode, page)
	}

	// One page more than fits: kid-000 … kid-099 sort before kid-ada.
	for i := range detachedPageSize {
		h := fmt.Sprintf("kid-%03d", i)
		if _, err := w.st.AddChild(ctx, w.home, h); err != nil {
			t.Fatal(err)
		}
		if err := w.st.DetachChild(ctx, w.home, h); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.st.AddChild(ctx, w.home, "kid-in-home"); err != nil {
		t.Fatal(err)
	}
	last := fmt.Sprintf("kid-%03d", detachedPageSize-1)
	_, page = w.do(c, "GET", "/detached", nil, "Authorization", "Bearer "+adminToken)
	if !strings.Contains(page, `href="/children/kid-000"`) || !strings.Contains(page, `href="/children/`+last+`"`) ||
		strings.Contains(page, w.child) || !strings.Contains(page, `id="next" href="/detached?after=`+last+`"`) {
		t.Fatalf("first page of %d: want kid-000 … %s and a next link\n%s", detachedPageSize, last, page)
	}
	resp, page = w.do(c, "GET", "/detached?after="+last, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `href="/children/`+w.child+`"`) ||
		strings.Contains(page, "kid-000") || strings.Contains(page, "kid-in-home") || strings.Contains(page, `id="next"`) {
		t.Fatalf("second page: %d; want only Ada, no next link\n%s", resp.StatusCode, page)
	}
}
