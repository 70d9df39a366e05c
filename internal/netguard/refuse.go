package netguard

import (
	"io"
	"net"
	"strconv"
	"time"
)

// Texts of the 503 answers, per reason.
var refusalText = map[string]string{
	ReasonAddrLimit: "too many connections from your address are still sending their requests; retry later",
	ReasonLimit:     "server busy: too many connections are still sending their requests; retry later",
}

// Response returns the HTTP answer a connection refused for reason gets:
// 503 with Retry-After and a plain-text reason, which a phone treats like
// any other "retry later".
func (g *Guard) Response(reason string) []byte {
	text := refusalText[reason]
	if text == "" {
		text = "server busy; retry later"
	}
	secs := int((g.lim.RetryAfter + time.Second - 1) / time.Second)
	return []byte("HTTP/1.1 503 Service Unavailable\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Retry-After: " + strconv.Itoa(max(1, secs)) + "\r\n" +
		"Connection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(text)) + "\r\n\r\n" + text)
}

// refuse counts a refused connection and answers it off the accept loop.
// At most lingerMax answers linger at once, so a flood of refusals costs
// bounded goroutines; beyond that the 503 is written from the accept loop
// (into an empty send buffer: it does not block) and the connection
// closed at once, which may reset it if the client had already sent more.
func (g *Guard) refuse(c net.Conn, reason string, answer bool) {
	g.onRefuse(reason)
	if !answer {
		c.Close()
		return
	}
	select {
	case g.linger <- struct{}{}:
		go func() {
			defer func() { <-g.linger }()
			g.answer(c, reason)
		}()
	default:
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
		_, _ = c.Write(g.Response(reason))
		c.Close()
	}
}

// answer writes the 503, then half-closes and reads what the client still
// sends until it closes or lingerTime passes: closing a socket with unread
// input makes the kernel send a reset, which can destroy the answer before
// the client reads it.
func (g *Guard) answer(c net.Conn, reason string) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(lingerTime))
	if _, err := c.Write(g.Response(reason)); err != nil {
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
}
