package console

import (
	"time"

	"github.com/guardianai/hearth/central/store"
	"github.com/valyala/fasthttp"
)

// detachedPageSize is how many children in no home one page shows.
const detachedPageSize = 100

type detachedPage struct {
	page
	Now      time.Time
	After    string // this page's cursor; "" for the first
	Children []store.DetachedChild
	Next     string // the next page's cursor; "" when this is the last
}

// serveDetached lists the children in no home (detached, their data
// kept), a page at a time in hash order (?after=HASH), each linking to its
// page, which shows its data and the form erasing it.
func (c *Console) serveDetached(ctx *fasthttp.RequestCtx, w who) {
	after := string(ctx.QueryArgs().Peek("after"))
	dbctx, cancel := c.dbContext()
	defer cancel()
	kids, more, err := c.o.Store.DetachedChildren(dbctx, after, detachedPageSize)
	if err != nil {
		c.failed(ctx, "list detached children", err)
		return
	}
	p := detachedPage{page: c.page("Children in no home", w, 0), Now: c.o.Now(), After: after, Children: kids}
	if more {
		p.Next = kids[len(kids)-1].Hash
	}
	c.render(ctx, fasthttp.StatusOK, "detached", p)
}
