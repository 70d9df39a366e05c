package apptest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/ingest/ingesttest"
	"github.com/guardianai/hearth/internal/testutil"
)

// maxAttackRSS is what central may reach at its peak through an attack:
// memory is bounded by its configuration, not by its clients.
const maxAttackRSS = 200 << 20

// Ensure that 200 sockets announcing 8 MB gzip batches without a token
// and sending no body cost central almost nothing (the body is not
// buffered before the token is checked), that a legitimate batch and a
// phone are served meanwhile, and that each socket is refused with 401 as
// soon as its first body byte arrives, not after 8 MB.
func TestCentral_Attack_HeaderOnlyBatches(t *testing.T) {
	db := CentralSQLite(t)
	home, tok := CentralAddHome(t, db, "legit")
	kid := CentralAddChild(t, db, home, "")
	c := StartCentral(t, db)
	fds := openFDs(t, c.Pid())

	const sockets = 200
	conns := make([]net.Conn, sockets)
	for i := range conns {
		conns[i] = dialCentral(t, c)
		fmt.Fprintf(conns[i], "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: 8388000\r\n\r\n", hearth.PathEdgeBatches)
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		if n := openFDs(t, c.Pid()); n < fds+sockets {
			return fmt.Errorf("central holds %d descriptors, want at least %d", n, fds+sockets)
		}
		return nil
	})
	servedDuringAttack(t, c, tok, kid)
	t.Logf("peak RSS with %d sockets open: %d MiB", sockets, peakRSS(t, c.Pid())>>20)

	for i, conn := range conns {
		conn.Write([]byte{0x1f}) // the first byte of a gzip body
		r, err := readAnswer(conn)
		if err != nil || r.Code != 401 || !strings.Contains(string(r.Body), "bearer token") {
			t.Fatalf("socket %d after one body byte: %+v, %v; want 401 at once", i, r, err)
		}
	}
	if peak := peakRSS(t, c.Pid()); peak > maxAttackRSS {
		t.Fatalf("central's peak RSS %d MiB through 200 header-only batches, want at most %d MiB", peak>>20, maxAttackRSS>>20)
	} else {
		t.Logf("peak RSS %d MiB", peak>>20)
	}
	_, metrics := get(t, c.Admin+"/metrics")
	if !strings.Contains(metrics, `hearth_central_batches_total{result="unauthorized"} 200`) {
		t.Errorf("metrics do not count 200 unauthorized batches:\n%s", testutil.GrepLines(metrics, "hearth_central_batches_total"))
	}
}

// Ensure that 8 concurrent gzip bombs (about 1 MiB each, inflating to 1
// GiB) with valid home tokens, three rounds of them, are refused (413, or
// 503 while the body budget is spent) without central's memory following
// them, and that a legitimate batch and a phone are served meanwhile.
func TestCentral_Attack_GzipBombs(t *testing.T) {
	db := CentralSQLite(t)
	home, tok := CentralAddHome(t, db, "legit")
	kid := CentralAddChild(t, db, home, "")
	var bombers []string
	for i := range 4 { // two bombs per home: the in-flight limit per home lets them in
		_, bt := CentralAddHome(t, db, fmt.Sprintf("bomber %d", i))
		bombers = append(bombers, bt)
	}
	c := StartCentral(t, db)
	bomb := gzipBomb(t, 1<<30)
	t.Logf("bomb: %d KiB of gzip inflating to 1 GiB", len(bomb)>>10)

	codes := map[int]int{}
	var mu sync.Mutex
	for range 3 {
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				r, err := postRaw(c, bombers[i%len(bombers)], bomb, map[string]string{"Content-Encoding": "gzip"})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					codes[0]++ // the connection was cut before an answer could be read
					return
				}
				codes[r.Code]++
			})
		}
		servedDuringAttack(t, c, tok, kid)
		wg.Wait()
	}
	if codes[413] == 0 || codes[200] != 0 || codes[413]+codes[503]+codes[429]+codes[0] != 24 {
		t.Errorf("bomb answers by status %v: want 413s (or 503/429), never 200", codes)
	}
	if peak := peakRSS(t, c.Pid()); peak > maxAttackRSS {
		t.Fatalf("central's peak RSS %d MiB through 24 gzip bombs, want at most %d MiB", peak>>20, maxAttackRSS>>20)
	} else {
		t.Logf("peak RSS %d MiB; answers by status %v", peak>>20, codes)
	}
}

// servedDuringAttack checks that central still stores a legitimate batch
// and a phone's HTTP post. A 503 + Retry-After (the body budget is spent
// for a moment) is retried, as the edge and a phone would.
func servedDuringAttack(t *testing.T, c *Central, token, kid string) {
	t.Helper()
	now := time.Now().UTC()
	body := batchBody(now, locMsg(uint64(now.UnixNano()), kid, now.Add(-time.Second), 1, now))
	testutil.WaitFor(t, 10*time.Second, func() error {
		r := c.PostBatch(t, token, body, true)
		if r.Code != 200 || !strings.Contains(string(r.Body), `"ok"`) {
			return fmt.Errorf("legitimate batch during the attack: %d %s", r.Code, r.Body)
		}
		return nil
	})
	phone := fmt.Sprintf(`{"child_hash":%q,"location_info":%s}`, kid, ingesttest.LocationData(int(now.UnixNano()%1000)))
	testutil.WaitFor(t, 10*time.Second, func() error {
		code, out, hdr := ingesttest.Post(t, ingesttest.Target{URL: c.URL}, phone, nil)
		if code == 503 && hdr.Get("Retry-After") == "" {
			t.Fatalf("phone during the attack: 503 without Retry-After: %v", out)
		}
		if sec, _ := out["location"].(map[string]any); code != 200 || sec["status"] != "ok" {
			return fmt.Errorf("phone during the attack: %d %v", code, out)
		}
		return nil
	})
}

// gzipBomb returns gzip that inflates to size zero bytes: one member of 1
// MiB of zeros repeated (a gzip reader reads concatenated members as one
// stream), so building it costs the test nothing.
func gzipBomb(t *testing.T, size int) []byte {
	t.Helper()
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	zw.Write(make([]byte, 1<<20))
	zw.Close()
	return bytes.Repeat(member.Bytes(), size>>20)
}

// postRaw posts a batch over a bare connection and reads the answer even
// when central answers before the body is written and closes.
func postRaw(c *Central, token string, body []byte, hdr map[string]string) (CentralReply, error) {
	conn, err := net.Dial("tcp", strings.TrimPrefix(c.URL, "http://"))
	if err != nil {
		return CentralReply{}, err
	}
	defer conn.Close()
	var h strings.Builder
	fmt.Fprintf(&h, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", hearth.PathEdgeBatches, token, len(body))
	for k, v := range hdr {
		fmt.Fprintf(&h, "%s: %s\r\n", k, v)
	}
	h.WriteString("\r\n")
	if _, err := io.WriteString(conn, h.String()); err != nil {
		return CentralReply{}, err
	}
	go conn.Write(body) // fails once central has answered and closed: that is the point
	return readAnswer(conn)
}

// readAnswer reads one HTTP answer from conn.
func readAnswer(conn net.Conn) (CentralReply, error) {
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return CentralReply{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return CentralReply{Code: resp.StatusCode, Body: b, Header: resp.Header}, nil
}

func dialCentral(t *testing.T, c *Central) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(c.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Pid is the process id of the running binary.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// peakRSS is the process's peak resident set size (VmHWM), in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc to measure memory: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("no /proc to count descriptors: %v", err)
	}
	return len(fds)
}
