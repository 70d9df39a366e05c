package forwarder

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/guardianai/hearth/outbox"
)

// A message that makes central fail (a 5xx, say a bug in central that one
// payload trips) would hold up the whole queue behind it for ever. So when
// batches keep failing with a 5xx, the forwarder bisects: each further
// failure halves the batch, down to single messages. A message that then
// fails alone is a suspect; the next read skips it once, and when a
// neighbour is stored meanwhile (central works), the suspect is tried
// alone again. After poisonStrikes such failures, only that message goes
// to the dead letters, with central's answer as the reason. A strike
// needs central to have stored some batch since the bisection began, and
// a neighbour stored since the last strike (or none left to try): while
// central fails on everything, it is down, and nothing is moved.
//
// Only central's own failures count: 500 (and 501) without Retry-After. A
// 503 (central unavailable, or busy) or any answer with Retry-After says
// central as a whole cannot take data now, and 502/504 come from a proxy
// or the network: none of them starts a bisection, so a flaky link never
// moves a good message aside.

const (
	bisectAfter   = 3 // consecutive 5xx batches before batches are halved
	poisonStrikes = 4 // failures alone, neighbours stored in between
)

// bisect is the search for a poison message; owned by the send loop.
type bisect struct {
	serverErrs  int    // consecutive batches failed with a 5xx that may be a message's fault
	active      bool   // halving batches on each such failure
	suspect     uint64 // a message that failed alone (0: none)
	strikes     int    // its failures alone with a neighbour stored in between
	neighbourOK bool   // a batch without it was stored since its last failure
	storedSince bool   // central stored a batch since the bisection began
	skip        bool   // the next read from the oldest starts after it
	skipped     bool   // that read is under way: nothing read yet
	reread      bool   // read again from the oldest: the suspect's next turn
}

// takeSkip returns where a read from the oldest starts: after the suspect
// once after each of its failures, else 0.
func (b *bisect) takeSkip() uint64 {
	if !b.skip {
		return 0
	}
	b.skip, b.skipped = false, true
	return b.suspect
}

// readSome notes that a read found messages; read nothing after skipping
// the suspect means it is the only one left.
func (b *bisect) readSome(n int) {
	if n > 0 {
		b.skipped = false
	}
}

// aloneInQueue reports, once, that a read that skipped the suspect found
// nothing else: there is no neighbour to try, so its next failure counts
// as if one had been stored, and it is tried again at once.
func (b *bisect) aloneInQueue() bool {
	if !b.skipped {
		return false
	}
	b.skipped, b.neighbourOK = false, true
	return true
}

// takeReread reports, once, that the suspect should be tried again.
func (b *bisect) takeReread() bool {
	r := b.reread
	b.reread = false
	return r
}

// stored notes a batch that central answered for.
func (f *Forwarder) stored(sent []uint64) {
	b := &f.bisect
	if b.active {
		b.storedSince = true
	}
	if b.suspect == 0 {
		b.serverErrs = 0
		return
	}
	for _, s := range sent {
		if s == b.suspect { // it went through after all
			b.suspect, b.strikes, b.neighbourOK = 0, 0, false
			return
		}
	}
	// A neighbour went through: the suspect's turn again (read from the
	// oldest after every one, so it is never left behind the cursor).
	b.neighbourOK, b.reread = true, true
}

// serverError acts on a batch that failed with a 5xx (not 503): it
// halves the next batches or, for a message that fails alone, counts a
// strike and at the last moves it to the dead letters.
func (f *Forwarder) serverError(fl *flight, o outcome) outcome {
	b := &f.bisect
	b.serverErrs++
	if !b.active && b.serverErrs < bisectAfter {
		return o
	}
	if !b.active {
		f.log.Warn("central keeps failing on batches; sending smaller ones to find a message it fails on", "failures", b.serverErrs)
	}
	b.active = true
	sent := fl.batch.Seqs
	if len(sent) > 1 {
		f.msgCap, f.okStreak = max(1, len(sent)/2), 0
		return o
	}
	seq := sent[0]
	if seq != b.suspect {
		b.suspect, b.strikes, b.neighbourOK = seq, 0, false
	}
	if b.storedSince && (b.strikes == 0 || b.neighbourOK) {
		b.strikes++
	}
	b.neighbourOK, b.skip = false, true
	if b.strikes < poisonStrikes {
		return o
	}
	child, kind := describe(fl.batch.JSON, seq)
	reason := outbox.ReasonPoisonPrefix + o.err.Error()
	f.queue.DeadLetterLater(seq, reason)
	f.metrics.messages.WithLabelValues(resultRejected).Inc()
	f.metrics.deadLettered.WithLabelValues(outbox.DeadPoison).Inc()
	f.log.Warn("central fails on this message alone while storing its neighbours; moved to the dead letters",
		"seq", seq, "child", shortChild(child), "type", kind, "strikes", b.strikes, "reason", o.err)
	*b = bisect{}
	f.msgCap = f.cfg.BatchMessages
	return outcome{label: resultRejected}
}

// describe finds the child and type of message seq in a batch's JSON, for
// a log line; "" when not found.
func describe(batchJSON []byte, seq uint64) (child, kind string) {
	mark := append(strconv.AppendUint([]byte(`{"seq":`), seq, 10), ',')
	i := bytes.Index(batchJSON, mark)
	if i < 0 {
		return "", ""
	}
	dec := json.NewDecoder(bytes.NewReader(batchJSON[i:]))
	var m struct {
		ChildHash string `json:"child_hash"`
		Type      string `json:"type"`
	}
	if dec.Decode(&m) != nil {
		return "", ""
	}
	return m.ChildHash, m.Type
}

// shortChild is a child hash cut for logs as ingest cuts it: hashes are
// never printed whole.
func shortChild(h string) string {
	if len(h) <= 6 {
		return h[:len(h)/2] + "…"
	}
	return h[:6] + "…"
}
