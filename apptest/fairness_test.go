package apptest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guardianai/hearth/ingest/ingesttest"
	"github.com/guardianai/hearth/internal/testutil"
)

// Ensure that a home flooding central with concurrent batches is answered
// 429 + Retry-After beyond its rate and in-flight limits (set by flags),
// while another home's real edge delivers every message its phone sent.
func TestCentral_HomeFairness_NoisyHomeThrottled(t *testing.T) {
	c := StartCentral(t, CentralSQLite(t), "--home-batch-rate", "5", "--home-batch-burst", "5", "--home-batches-in-flight", "2")
	quietHome, quietTok := CentralAddHome(t, c.DB, "quiet")
	kid := CentralAddChild(t, c.DB, quietHome, "")
	quietReader := CentralAddReader(t, c.DB, quietHome)
	noisyHome, noisyTok := CentralAddHome(t, c.DB, "noisy")
	noisyKid := CentralAddChild(t, c.DB, noisyHome, "")
	d := StartHearthd(t, t.TempDir(), "--central-url", c.URL, "--central-token", quietTok, "--edge-id", "quiet-edge",
		"--forward-replay-jitter", "0s", "--forward-max-backoff", "2s", "--forward-batch-messages", "5")

	codes := map[int]int{}
	var mu sync.Mutex
	var flood sync.WaitGroup
	for g := range 8 {
		flood.Go(func() {
			for i := range 10 {
				now := time.Now().UTC()
				r, err := postRaw(c, noisyTok, gzipped(batchBody(now, locMsg(uint64(g*100+i), noisyKid, now.Add(-time.Minute), 1, now))), map[string]string{"Content-Encoding": "gzip"})
				mu.Lock()
				if err == nil && r.Code == 429 && r.Header.Get("Retry-After") == "" {
					codes[-429]++ // a 429 without Retry-After
				}
				codes[r.Code]++ // 0: no answer
				mu.Unlock()
			}
		})
	}

	const n = 30
	conn := ingesttest.MustDial(t, ingesttest.Target{URL: d.URL}, "/ws/ingest/"+kid+"/")
	conn.Expect("connection_established")
	base := time.Now().Add(-time.Hour).UTC()
	for i := range n {
		conn.Send(ingesttest.Frame("location", fmt.Sprintf(`{"timestamp":%q,"latitude":51.5,"longitude":-0.12}`, base.Add(time.Duration(i)*time.Second).Format(time.RFC3339))))
		conn.ExpectAck("location")
	}
	flood.Wait()
	testutil.WaitFor(t, 30*time.Second, func() error {
		if got := len(c.readLocations(t, quietReader, kid)); got != n {
			return fmt.Errorf("central holds %d of the quiet home's %d locations", got, n)
		}
		return nil
	})
	if codes[429] == 0 || codes[-429] != 0 || codes[200]+codes[429] != 80 {
		t.Fatalf("noisy home's answers by status %v: want 200s and 429s with Retry-After only", codes)
	}
	_, metrics := get(t, c.Admin+"/metrics")
	for _, want := range []string{`hearth_central_batches_total{result="rate_limited"}`, `hearth_central_limited_total{endpoint="batches",limit="home_rate"}`,
		`hearth_central_edge_versions{version=`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("central's metrics lack %q", want)
		}
	}
	_, edgeMetrics := get(t, d.Admin+"/metrics")
	t.Logf("noisy home: %v; quiet edge: %s", codes, testutil.GrepLines(edgeMetrics, "hearth_forward_batches_total"))
}

// gzipped compresses body as the forwarder does.
func gzipped(body []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(body)
	zw.Close()
	return b.Bytes()
}
