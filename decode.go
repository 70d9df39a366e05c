package hearth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// screenTime reads a screen_time payload. As in the seed, date,
// total_screen_time and app_wise_data are required; inside app_wise_data
// the seed skipped what it could not store (apps that are not objects,
// hours outside 0-23, seconds that are not numbers), and so does ModeSeed.
func (rd *reader) screenTime(obj map[string]json.RawMessage) (*ScreenTime, error) {
	if err := rd.unknownFields("", obj, "date", "total_screen_time", "app_wise_data"); err != nil {
		return nil, err
	}
	st := &ScreenTime{}
	var err error
	if st.Date, err = rd.date("date", obj["date"]); err != nil {
		return nil, err
	}
	total, ok := obj["total_screen_time"]
	if !ok || isNull(total) {
		return nil, invalid("total_screen_time", "is required (seconds)")
	}
	if st.TotalSeconds, err = rd.seconds("total_screen_time", total, MaxDaySeconds); err != nil {
		return nil, err
	}
	apps, ok := obj["app_wise_data"]
	if !ok || isNull(apps) {
		return nil, invalid("app_wise_data", `is required (an object {"app id": {"hour": seconds}}, {} when there is none)`)
	}
	st.Apps, err = rd.apps(apps)
	return st, err
}

func (rd *reader) apps(raw json.RawMessage) (map[string]map[int]int64, error) {
	apps := map[string]map[int]int64{}
	members, ok := objectMembers(raw)
	if !ok {
		return apps, rd.lenient("app_wise_data", NoteNotObject, "not an object; per-app data ignored", "must be an object of app id → {hour: seconds}", true)
	}
	if len(members) > MaxApps {
		return nil, invalid("app_wise_data", fmt.Sprintf("has %d apps; at most %d allowed", len(members), MaxApps))
	}
	for _, app := range sortedKeys(members) {
		if err := checkAppID(app); err != nil {
			return nil, err
		}
		hours, err := rd.hours("app_wise_data."+clip(app), members[app])
		if err != nil {
			return nil, err
		}
		if hours != nil {
			apps[app] = hours
		}
	}
	return apps, nil
}

// checkAppID refuses app ids the dashboard cannot hold or show.
func checkAppID(app string) error {
	switch {
	case app == "":
		return invalid("app_wise_data", "app id must not be empty")
	case len(app) > MaxAppIDLen:
		return invalid("app_wise_data."+clip(app), fmt.Sprintf("app id longer than %d bytes", MaxAppIDLen))
	case hasControl(app):
		return invalid("app_wise_data."+strconv.QuoteToASCII(clip(app)), "app id contains a control character (NUL, C0 or DEL)")
	}
	return nil
}

// hours reads one app's {hour: seconds}; nil when the app is skipped.
func (rd *reader) hours(field string, raw json.RawMessage) (map[int]int64, error) {
	members, ok := objectMembers(raw)
	if !ok {
		return nil, rd.lenient(field, NoteNotObject, "not an object of hour → seconds; app ignored", "must be an object of hour → seconds", true)
	}
	hours := make(map[int]int64, len(members))
	for _, key := range sortedKeys(members) {
		hf := field + "." + clip(key)
		hour, ok, err := rd.hour(hf, key)
		if err != nil || !ok {
			if err != nil {
				return nil, err
			}
			continue
		}
		if _, dup := hours[hour]; dup {
			if err := rd.lenient(hf, NoteDuplicate, fmt.Sprintf("hour %d given twice; this one ignored", hour), fmt.Sprintf("hour %d is given twice", hour), true); err != nil {
				return nil, err
			}
			continue
		}
		secs, ok, err := rd.hourSeconds(hf, members[key])
		if err != nil {
			return nil, err
		}
		if ok {
			hours[hour] = secs
		}
	}
	return hours, nil
}

// hour parses an hour key as Python's int() did ("07" and " 7" are 7);
// ok is false when the hour is skipped.
func (rd *reader) hour(field, key string) (int, bool, error) {
	h, err := strconv.Atoi(strings.TrimSpace(key))
	if err != nil || h < 0 || h > 23 {
		return 0, false, rd.lenient(field, NoteBadHour, "not an hour 0-23; ignored", fmt.Sprintf("%q is not an hour 0-23", clip(key)), true)
	}
	if strconv.Itoa(h) != key {
		err = rd.lenient(field, NoteHourForm, fmt.Sprintf("taken as hour %d", h), fmt.Sprintf("hour must be written %q", strconv.Itoa(h)), false)
	}
	return h, err == nil, err
}

// hourSeconds reads an hour's seconds; ok is false when the seed would
// have skipped them (not a number).
func (rd *reader) hourSeconds(field string, raw json.RawMessage) (int64, bool, error) {
	n, err := parseCount(raw)
	if err != nil {
		return 0, false, rd.lenient(field, NoteBadSeconds, "seconds are not a number; ignored", err.Error(), true)
	}
	secs, err := rd.count(field, n, MaxHourSeconds)
	return secs, err == nil, err
}

// seconds reads a required count of seconds.
func (rd *reader) seconds(field string, raw json.RawMessage, max int64) (int64, error) {
	n, err := parseCount(raw)
	if err != nil {
		return 0, invalid(field, err.Error())
	}
	return rd.count(field, n, max)
}

// count applies the normalisations and bounds of a count of seconds.
func (rd *reader) count(field string, n number, max int64) (int64, error) {
	if n.quoted {
		if err := rd.lenient(field, NoteNumberString, "number in a string; taken as a number", "must be a JSON number, not a string", false); err != nil {
			return 0, err
		}
	}
	if n.fraction {
		if err := rd.lenient(field, NoteFraction, fmt.Sprintf("fraction dropped (%d seconds)", n.whole), fmt.Sprintf("%s is not a whole number of seconds", clip(n.text)), false); err != nil {
			return 0, err
		}
	}
	if n.whole < 0 || n.whole > max {
		return 0, invalid(field, fmt.Sprintf("%s seconds is outside 0-%d", clip(n.text), max))
	}
	return n.whole, nil
}

// location reads a location payload.
func (rd *reader) location(obj map[string]json.RawMessage) (*Location, error) {
	if err := rd.unknownFields("", obj, "timestamp", "latitude", "longitude"); err != nil {
		return nil, err
	}
	loc := &Location{}
	var err error
	if loc.Timestamp, err = rd.time("timestamp", obj["timestamp"]); err != nil {
		return nil, err
	}
	if loc.Latitude, err = rd.coordinate("latitude", obj["latitude"], 90); err != nil {
		return nil, err
	}
	loc.Longitude, err = rd.coordinate("longitude", obj["longitude"], 180)
	return loc, err
}

func (rd *reader) coordinate(field string, raw json.RawMessage, limit float64) (float64, error) {
	if isNull(raw) {
		return 0, invalid(field, "is required")
	}
	v, quoted, err := parseFloat(raw)
	if err != nil {
		return 0, invalid(field, err.Error())
	}
	if quoted {
		if err := rd.lenient(field, NoteNumberString, "number in a string; taken as a number", "must be a JSON number, not a string", false); err != nil {
			return 0, err
		}
	}
	if !(v >= -limit && v <= limit) { // also refuses NaN
		return 0, invalid(field, fmt.Sprintf("%v is outside -%v..%v", v, limit, limit))
	}
	return v, nil
}

// siteAccess reads a site_access payload. The seed took a missing "logs"
// as no visits and skipped visits missing a field; ModeSeed does the same.
func (rd *reader) siteAccess(obj map[string]json.RawMessage) (*SiteAccess, error) {
	if err := rd.unknownFields("", obj, "logs"); err != nil {
		return nil, err
	}
	sa := &SiteAccess{Logs: []SiteVisit{}}
	raw, ok := obj["logs"]
	if !ok || isNull(raw) {
		return sa, rd.lenient("logs", NoteMissingLogs, "missing; taken as no visits", "is required (a list of visits)", false)
	}
	var logs []json.RawMessage
	if !isList(raw) || json.Unmarshal(raw, &logs) != nil {
		return nil, invalid("logs", "must be a list of visits")
	}
	if len(logs) == 0 && rd.mode == ModeStrict {
		return nil, invalid("logs", "must not be empty")
	}
	if len(logs) > MaxLogs {
		return nil, invalid("logs", fmt.Sprintf("has %d entries; at most %d allowed", len(logs), MaxLogs))
	}
	for i, l := range logs {
		v, ok, err := rd.visit(fmt.Sprintf("logs[%d]", i), l)
		if err != nil {
			return nil, err
		}
		if ok {
			sa.Logs = append(sa.Logs, v)
		}
	}
	return sa, nil
}

// visit reads one log entry; ok is false when it is skipped.
func (rd *reader) visit(field string, raw json.RawMessage) (SiteVisit, bool, error) {
	var v SiteVisit
	obj, err := rd.object(field, raw)
	if err != nil {
		return v, false, err
	}
	if err := rd.unknownFields(field+".", obj, "timestamp", "url", "accessed"); err != nil {
		return v, false, err
	}
	if missing := incomplete(obj); missing != "" {
		return v, false, rd.lenient(field+"."+missing, NoteIncompleteVisit, "missing or empty; visit ignored", "is required", true)
	}
	if v.Timestamp, err = rd.time(field+".timestamp", obj["timestamp"]); err != nil {
		return v, false, err
	}
	if v.URL, err = rd.url(field+".url", obj["url"]); err != nil {
		return v, false, err
	}
	v.Accessed, err = rd.accessed(field+".accessed", obj["accessed"])
	return v, err == nil, err
}

// incomplete names the first field the seed would have skipped the visit
// for: a missing or empty timestamp, a missing url or accessed (and,
// unlike the seed, which stored it, an empty url).
func incomplete(obj map[string]json.RawMessage) string {
	for _, f := range []string{"timestamp", "url", "accessed"} {
		raw := obj[f]
		if isNull(raw) || (f != "accessed" && string(raw) == `""`) {
			return f
		}
	}
	return ""
}

func (rd *reader) url(field string, raw json.RawMessage) (string, error) {
	var u string
	if json.Unmarshal(raw, &u) != nil {
		return "", invalid(field, "must be a string")
	}
	if hasControl(u) {
		u = escapeControl(u)
		rd.notes = append(rd.notes, Note{Field: field, Reason: NoteURLControl, Text: "control characters percent-encoded (RFC 3986 forbids them raw)"})
	}
	if len(u) > MaxURLLen {
		return "", invalid(field, fmt.Sprintf("longer than %d bytes", MaxURLLen))
	}
	return u, nil
}

// accessed reads a visit's accessed flag; the seed stored bool(value), so
// ModeSeed takes any JSON value by Python's truthiness.
func (rd *reader) accessed(field string, raw json.RawMessage) (bool, error) {
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, nil
	}
	b = truthy(raw)
	return b, rd.lenient(field, NoteTruthy, fmt.Sprintf("%s taken as %v", clip(string(raw)), b), "must be true or false", false)
}

// objectMembers splits raw into its members as json.Unmarshal into a map
// does (the last of a repeated key wins); false when raw is not a JSON
// object. Most objects take splitObject's pass without reflection: a
// screen_time's apps and hours went through encoding/json one by one.
func objectMembers(raw json.RawMessage) (map[string]json.RawMessage, bool) {
	raw = bytes.TrimSpace(raw)
	if !isObject(raw) {
		return nil, false
	}
	if obj, ok := splitObject(raw); ok {
		return obj, true
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return nil, false
	}
	return obj, true
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
