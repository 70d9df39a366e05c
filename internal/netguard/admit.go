package netguard

// addrState is one address group's pending connections, oldest first.
type addrState struct {
	key        Key
	pending    int
	head, tail *Conn
}

// admit counts c in, making room if its address is entitled to it, or
// returns why it is refused. Idle keep-alive connections go first: an
// HTTP client reopens one without losing anything.
func (g *Guard) admit(c *Conn) (refused string) {
	var evicted []*Conn
	defer func() {
		for range evicted {
			g.onRefuse(ReasonEvicted)
		}
	}()
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.addrs[c.key]
	if g.lim.MaxPendingPerAddr > 0 && a != nil && a.pending >= g.lim.MaxPendingPerAddr {
		v := a.oldest(true)
		if v == nil {
			return ReasonAddrLimit
		}
		evicted = append(evicted, g.evictLocked(v))
	}
	if g.lim.MaxPending > 0 && g.total >= g.lim.MaxPending {
		v := g.victimLocked(c.key)
		if v == nil {
			return ReasonLimit
		}
		evicted = append(evicted, g.evictLocked(v))
	}
	g.trackLocked(c)
	return ""
}

// victimLocked picks the connection to close so that one more from key
// fits under MaxPending, or nil. An address below its fair share (the cap
// divided among the addresses holding pending connections, itself
// included) takes the place of the largest holder's oldest connection, so
// an attack from other addresses never locks it out; an address at or
// above its share may only replace one of its own idle connections.
func (g *Guard) victimLocked(key Key) *Conn {
	holders, mine := len(g.addrs), 0
	if a := g.addrs[key]; a != nil {
		mine = a.pending
	} else {
		holders++
	}
	if mine < max(1, g.lim.MaxPending/holders) {
		if big := g.largestLocked(); big != nil && big.key != key {
			if v := big.oldest(true); v != nil {
				return v
			}
			return big.oldest(false)
		}
	}
	if a := g.addrs[key]; a != nil {
		return a.oldest(true)
	}
	return nil
}

// largestLocked returns the address group holding the most pending
// connections. It scans every group, but runs only when the global cap is
// full, and there are at most MaxPending groups.
func (g *Guard) largestLocked() *addrState {
	var big *addrState
	for _, a := range g.addrs {
		if big == nil || a.pending > big.pending {
			big = a
		}
	}
	return big
}

// trackLocked counts c as pending.
func (g *Guard) trackLocked(c *Conn) {
	a := g.addrs[c.key]
	if a == nil {
		a = &addrState{key: c.key}
		g.addrs[c.key] = a
	}
	c.prev, c.next = a.tail, nil
	if a.tail != nil {
		a.tail.next = c
	} else {
		a.head = c
	}
	a.tail = c
	a.pending++
	g.total++
	c.tracked = true
	g.conns[c.id] = c
}

// untrack stops counting c (closed, established or evicted); it is
// idempotent.
func (g *Guard) untrack(c *Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.untrackLocked(c)
}

func (g *Guard) untrackLocked(c *Conn) {
	if !c.tracked {
		return
	}
	c.tracked = false
	a := g.addrs[c.key]
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		a.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		a.tail = c.prev
	}
	c.prev, c.next = nil, nil
	if a.pending--; a.pending == 0 {
		delete(g.addrs, c.key)
	}
	g.total--
	delete(g.conns, c.id)
}

// evictLocked stops counting v and makes its reads fail with ErrEvicted.
func (g *Guard) evictLocked(v *Conn) *Conn {
	g.untrackLocked(v)
	v.evict()
	return v
}

// oldest returns the group's oldest pending connection, or with idleOnly
// its oldest idle keep-alive connection (nil if none).
func (a *addrState) oldest(idleOnly bool) *Conn {
	for c := a.head; c != nil; c = c.next {
		if !idleOnly || c.isIdle() {
			return c
		}
	}
	return nil
}
