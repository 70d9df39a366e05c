package household

import (
	"sort"
	"time"
)

// Snapshot is everything the page shows, taken at one moment.
type Snapshot struct {
	Version     string
	Now         time.Time
	Connections int // phones connected now
	Children    []ChildDay
	Names       map[string]string // child hash → name, as central's roster gives them
	Backlog     Backlog
	Link        Link
	DeadLetters []DeadLetter // the oldest few, with their reasons
	DeadTotal   int64
}

// Backlog is what waits in the outbox for central.
type Backlog struct {
	Messages  int64
	Bytes     int64
	OldestAge time.Duration
}

// Link is the state of the link to central.
type Link struct {
	// State is one of LinkOff, LinkSending, LinkWaiting, LinkRefused.
	State       string
	Central     string // central's URL
	LastError   string
	LastErrorAt time.Time
}

// The link's states, in the page's words.
const (
	LinkOff     = "off"     // no central configured: data stays in the box
	LinkSending = "sending" // central takes what the box sends
	LinkWaiting = "waiting" // central does not answer or asks to wait
	LinkRefused = "refused" // central refuses the home's token
)

// DeadLetter is a message set aside for good, as the page shows it.
type DeadLetter struct {
	Child    string // hash
	Kind     string
	Received time.Time
	Code     string // the reason's code (outbox.DeadCode)
	Reason   string // central's answer, as stored
}

// deadWords explains a dead letter's reason code to a parent.
var deadWords = map[string]string{
	"unknown_child": "central does not know this child: add the child at central, then retry",
	"foreign_child": "central has this child in another home, or took it out of this one (its data stays at central)",
	"invalid":       "central could not read this data",
	"too_old":       "older than central keeps",
	"future":        "dated in the future: the phone's clock was ahead",
	"unknown_type":  "a kind of data central does not know",
	"too_large":     "too large for central",
	"poison":        "central kept failing on this message while it stored the others",
	"undecodable":   "the copy kept on this box is damaged",
}

// reasonWords explains a refusal reason (an ingest metric label) to a
// parent. Reasons not listed are shown as they are.
var reasonWords = map[string]string{
	"too_old":           "the data is older than hearth keeps, or the phone's clock is far behind: check the phone's date and time",
	"future":            "the phone's clock is ahead: set the phone's date and time to automatic",
	"unknown_child":     "this phone's child is not on this home's list: add the child at central",
	"bad_child_hash":    "the phone sent a child id hearth cannot read: reinstall or re-pair the app",
	"child_mismatch":    "the phone sent data for another child than the one it signed in as",
	"invalid":           "the phone sent data hearth cannot read (an app update may be needed)",
	"malformed_frame":   "the phone sent something that is not a message",
	"unknown_type":      "the phone sent a kind of data hearth does not know (an app update may be needed)",
	"too_large":         "a message was larger than hearth accepts",
	"rate_limited":      "the phone sent faster than allowed; it sends again later, nothing is lost",
	"full":              "this box's storage for unsent data is full; the phone keeps the data and sends again",
	"unavailable":       "hearth could not store the data at that moment; the phone sends again",
	"not_authenticated": "the phone sent data before signing in",
	"invalid_utf8":      "the phone sent text hearth cannot read",
}

// explain returns the plain words for reason.
func explain(reason string) string {
	if w, ok := reasonWords[reason]; ok {
		return w
	}
	return reason
}

// kindWords names the kinds of data in the page's words.
var kindWords = []struct{ kind, words string }{
	{"screen_time", "screen time"},
	{"location", "locations"},
	{"site_access", "sites visited"},
}

// childView is one child's row on the page.
type childView struct {
	Name      string
	Last      time.Time
	Counts    []countView
	Refusals  []countView
	LastWhy   string
	LastWhyAt time.Time
}

type countView struct {
	Label string
	Count int
	Words string
}

// shortHash is how the page names a child without a name.
func shortHash(h string) string {
	if len(h) > 10 {
		return h[:10] + "…"
	}
	return h
}

func (s *Snapshot) childName(hash string) string {
	if n := s.Names[hash]; n != "" {
		return n
	}
	return shortHash(hash)
}

func (s *Snapshot) childViews() []childView {
	out := make([]childView, 0, len(s.Children))
	for _, c := range s.Children {
		v := childView{Name: s.childName(c.Hash), Last: c.Last, LastWhy: c.LastRefusal, LastWhyAt: c.LastRefusalAt}
		for _, k := range kindWords {
			v.Counts = append(v.Counts, countView{Label: k.words, Count: c.Stored[k.kind]})
		}
		for reason, n := range c.Refused {
			v.Refusals = append(v.Refusals, countView{Label: reason, Count: n, Words: explain(reason)})
		}
		sort.Slice(v.Refusals, func(i, j int) bool { return v.Refusals[i].Count > v.Refusals[j].Count })
		out = append(out, v)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
