package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/fasthttp/websocket"
)

// refusal is a connection the server declined (bad handshake status, an
// error frame in the greeting or the auth flow). A permanent refusal (an
// unknown child, a wrong URL) is not worth retrying.
type refusal struct {
	reason    string
	permanent bool
}

func (r *refusal) Error() string { return r.reason }

// reply is any JSON frame the server sends.
type reply struct {
	Type        string          `json:"type"`
	MessageType string          `json:"message_type"`
	Status      string          `json:"status"`
	Message     string          `json:"message"`
	ID          json.RawMessage `json:"id"`
}

// dial opens a WebSocket for child and completes the greeting of mode:
// connection_established for ws (and http, for idle conns), the auth
// exchange for ws-auth. It returns a *refusal when the server declined.
func dial(ctx context.Context, d *websocket.Dialer, t target, mode Mode, child string, timeout time.Duration) (*websocket.Conn, error) {
	u := t.directURL(child)
	if mode == ModeWSAuth {
		u = t.authURL()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, resp, err := d.DialContext(ctx, u, nil)
	if err != nil {
		if resp != nil {
			return nil, handshakeRefusal(resp.StatusCode)
		}
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	if mode == ModeWSAuth {
		err = authenticate(c, child, deadline)
	} else {
		err = expect(c, "connection_established", deadline)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func handshakeRefusal(code int) *refusal {
	// 4xx other than 429 will not change by retrying; 5xx (503: too many
	// connections) may.
	return &refusal{reason: "handshake HTTP " + strconv.Itoa(code), permanent: code >= 400 && code < 500 && code != 429}
}

// expect reads one frame and requires its type to be want.
func expect(c *websocket.Conn, want string, deadline time.Time) error {
	r, err := readReply(c, deadline)
	if err != nil {
		return err
	}
	switch r.Type {
	case want:
		return nil
	case "error":
		return &refusal{reason: "refused: " + r.Message}
	}
	return &refusal{reason: fmt.Sprintf("expected %s, got %q", want, r.Type)}
}

// authenticate runs the auth flow. An error frame followed by close 4001
// or 4004 is a permanent refusal.
func authenticate(c *websocket.Conn, child string, deadline time.Time) error {
	if err := expect(c, "auth_required", deadline); err != nil {
		return err
	}
	childJSON, _ := json.Marshal(child)
	frame := append(append([]byte(`{"type":"auth","child_hash":`), childJSON...), '}')
	c.SetWriteDeadline(deadline)
	if err := c.WriteMessage(websocket.TextMessage, frame); err != nil {
		return err
	}
	err := expect(c, "auth_success", deadline)
	var rf *refusal
	if !errors.As(err, &rf) {
		return err
	}
	// The close code that follows the error frame tells whether the child
	// is unknown for good.
	_, _, cerr := c.ReadMessage()
	if websocket.IsCloseError(cerr, 4001, 4004) {
		rf.permanent = true
	}
	return rf
}

func readReply(c *websocket.Conn, deadline time.Time) (reply, error) {
	var r reply
	c.SetReadDeadline(deadline)
	typ, p, err := c.ReadMessage()
	if err != nil {
		return r, err
	}
	if typ != websocket.TextMessage {
		return r, fmt.Errorf("unexpected binary frame of %d bytes", len(p))
	}
	if err := json.Unmarshal(p, &r); err != nil {
		return r, fmt.Errorf("undecodable reply %.40q: %w", p, err)
	}
	return r, nil
}

// reason turns err into a short, bounded text for the top-errors table:
// no addresses or ports, which would make every occurrence distinct.
func reason(err error) string {
	var rf *refusal
	var ce *websocket.CloseError
	var ne net.Error
	var oe *net.OpError
	var se *os.SyscallError
	switch {
	case errors.As(err, &rf):
		return rf.reason
	case errors.As(err, &ce):
		return fmt.Sprintf("closed by server: %d %s", ce.Code, ce.Text)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed (EOF)"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &se):
		return se.Error()
	case errors.As(err, &oe):
		return oe.Op + ": " + oe.Err.Error()
	}
	return err.Error()
}
