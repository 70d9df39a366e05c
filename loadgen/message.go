package loadgen

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// TimeLayout is how the generator writes device timestamps and how AckKey
// normalises them: UTC with microseconds, the precision a SQL store keeps.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

const dateLayout = "2006-01-02"

// message is one data message a phone sends until it is answered.
type message struct {
	kind   string
	key    string // AckKey of data
	data   []byte // the "data" object of the frame, the *_info value of the body
	id     uint64 // echoed in the ack
	tries  int
	sentAt time.Time
}

// clock hands out timestamps near now that are distinct to the microsecond
// across all phones, so that every location and site visit is its own row
// downstream even when phones share a child.
type clock struct {
	last atomic.Int64 // Unix microseconds
	now  func() time.Time
}

func newClock() *clock { return &clock{now: time.Now} }

func (c *clock) next() time.Time {
	for {
		now, last := c.now().UnixMicro(), c.last.Load()
		if now <= last {
			now = last + 1
		}
		if c.last.CompareAndSwap(last, now) {
			return time.UnixMicro(now).UTC()
		}
	}
}

// generator makes the messages of one phone: valid, near now and unique.
type generator struct {
	phone int    // 1-based
	run   string // distinguishes the app ids and URLs of separate runs
	mix   Mix
	clock *clock
	seq   uint64
}

var mixedKinds = [...]Mix{MixLocation, MixScreenTime, MixSiteAccess}

func (g *generator) next() *message {
	g.seq++
	kind := g.mix
	if kind == MixMixed {
		kind = mixedKinds[(g.seq+uint64(g.phone))%3]
	}
	t := g.clock.next()
	m := &message{kind: string(kind), id: g.seq}
	switch kind {
	case MixLocation:
		m.data, m.key = g.location(t)
	case MixScreenTime:
		m.data, m.key = g.screenTime(t)
	default:
		m.data, m.key = g.siteAccess(t)
	}
	return m
}

func (g *generator) location(t time.Time) ([]byte, string) {
	ts := t.Format(TimeLayout)
	lat := 40 + float64(g.seq%100000)*1e-5
	lon := -74 + float64(g.phone%1000)*1e-4
	b := make([]byte, 0, 96)
	b = append(b, `{"timestamp":"`...)
	b = append(b, ts...)
	b = append(b, `","latitude":`...)
	b = strconv.AppendFloat(b, lat, 'f', 6, 64)
	b = append(b, `,"longitude":`...)
	b = strconv.AppendFloat(b, lon, 'f', 6, 64)
	b = append(b, '}')
	return b, ts
}

func (g *generator) screenTime(t time.Time) ([]byte, string) {
	date, hour := t.Format(dateLayout), strconv.Itoa(t.Hour())
	app := fmt.Sprintf("com.hearth.load.r%s.p%d.m%d", g.run, g.phone, g.seq)
	secs := strconv.FormatUint(1+g.seq%3600, 10)
	b := make([]byte, 0, 160)
	b = append(b, `{"date":"`...)
	b = append(b, date...)
	b = append(b, `","total_screen_time":`...)
	b = append(b, secs...)
	b = append(b, `,"app_wise_data":{"`...)
	b = append(b, app...)
	b = append(b, `":{"`...)
	b = append(b, hour...)
	b = append(b, `":`...)
	b = append(b, secs...)
	b = append(b, `}}}`...)
	return b, date + " " + app + " " + hour
}

func (g *generator) siteAccess(t time.Time) ([]byte, string) {
	ts := t.Format(TimeLayout)
	u := fmt.Sprintf("https://load.example/r%s/p%d/%d", g.run, g.phone, g.seq)
	b := make([]byte, 0, 160)
	b = append(b, `{"logs":[{"timestamp":"`...)
	b = append(b, ts...)
	b = append(b, `","url":"`...)
	b = append(b, u...)
	b = append(b, `","accessed":`...)
	b = strconv.AppendBool(b, g.seq%2 == 0)
	b = append(b, `}]}`...)
	return b, ts + " " + u
}

// frame is the WebSocket text frame carrying m.
func (m *message) frame() []byte {
	b := make([]byte, 0, len(m.data)+48)
	b = append(b, `{"type":"`...)
	b = append(b, m.kind...)
	b = append(b, `","id":`...)
	b = strconv.AppendUint(b, m.id, 10)
	b = append(b, `,"data":`...)
	b = append(b, m.data...)
	return append(b, '}')
}

// body is the HTTP fallback body carrying m for child (a JSON string).
func (m *message) body(childJSON []byte) []byte {
	b := make([]byte, 0, len(m.data)+len(childJSON)+48)
	b = append(b, `{"child_hash":`...)
	b = append(b, childJSON...)
	b = append(b, `,"`...)
	b = append(b, m.kind...)
	b = append(b, `_info":`...)
	b = append(b, m.data...)
	return append(b, '}')
}

// AckKey returns the key under which the ack log records a message of kind
// with the given data object: the fields that make its row unique
// downstream, with timestamps normalised to TimeLayout, so that a crash test
// can match the rows it finds stored against the ack log.
//   - location:    "<timestamp>"
//   - site_access: "<timestamp> <url>" of the first log entry
//   - screen_time: "<date> <app> <hour>" of the first app and hour
//
// Messages made by this package carry exactly one app, hour and log entry.
func AckKey(kind string, data []byte) (string, error) {
	switch kind {
	case string(MixLocation):
		var v struct {
			Timestamp string `json:"timestamp"`
		}
		if err := json.Unmarshal(data, &v); err != nil {
			return "", fmt.Errorf("decode location: %w", err)
		}
		return normTime(v.Timestamp)
	case string(MixSiteAccess):
		var v struct {
			Logs []struct {
				Timestamp string `json:"timestamp"`
				URL       string `json:"url"`
			} `json:"logs"`
		}
		if err := json.Unmarshal(data, &v); err != nil {
			return "", fmt.Errorf("decode site_access: %w", err)
		}
		if len(v.Logs) == 0 {
			return "", errors.New("site_access without logs")
		}
		ts, err := normTime(v.Logs[0].Timestamp)
		return ts + " " + v.Logs[0].URL, err
	case string(MixScreenTime):
		var v struct {
			Date string                                `json:"date"`
			Apps map[string]map[string]json.RawMessage `json:"app_wise_data"`
		}
		if err := json.Unmarshal(data, &v); err != nil {
			return "", fmt.Errorf("decode screen_time: %w", err)
		}
		for app, hours := range v.Apps {
			for hour := range hours {
				return v.Date + " " + app + " " + hour, nil
			}
		}
		return "", errors.New("screen_time without app_wise_data")
	}
	return "", fmt.Errorf("unknown kind %q", kind)
}

func normTime(s string) (string, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return "", fmt.Errorf("timestamp: %w", err)
	}
	return t.UTC().Format(TimeLayout), nil
}
