package console

import (
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/store"
)

type dayData struct {
	date  string
	total int64
	apps  map[string]map[int]int64
}

func toDays(ds []dayData) []store.ScreenTimeDay {
	var out []store.ScreenTimeDay
	for _, d := range ds {
		out = append(out, store.ScreenTimeDay{Date: d.date, TotalSeconds: d.total, Apps: d.apps})
	}
	return out
}

func mustDay(t *testing.T, s string) time.Time {
	d, err := time.Parse(hearth.DateLayout, s)
	if err != nil {
		t.Fatal(err)
	}
	return d.Add(12 * time.Hour)
}
