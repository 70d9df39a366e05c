package central

import (
	"reflect"
	"testing"
	"time"

	"github.com/guardianai/hearth"
)

// FuzzEdgeAckedCentralKeeps checks the message contract across the wire:
// for any payload and the same reference clock, what the edge acks (Check
// in seed mode against the edge's window) central's batch path takes for
// the store (PrepareMessages rejects nothing), however long it waited in
// the outbox and whether the edge stamped it on central's clock (synced)
// or on its own clock, offset by offsetSecs.
func FuzzEdgeAckedCentralKeeps(f *testing.F) {
	now := time.Now().UTC().Format(time.RFC3339)
	for _, seed := range []struct {
		kind uint8
		data string
	}{
		{0, `{"date":"` + now[:10] + `","total_screen_time":"3600","app_wise_data":{"com.a":{"07":1800.5,"25":1}}}`},
		{1, `{"timestamp":"` + now[:19] + `","latitude":"40.7","longitude":-74,"speed":1}`},
		{1, `{"timestamp":"` + now + `","latitude":1,"longitude":2}`},
		{2, `{"logs":[{"timestamp":"` + now + `","url":"https://a.example/\u0000","accessed":"yes"},{"url":"x"}]}`},
		{2, `{}`},
	} {
		for _, wait := range []uint32{0, 3600, 300 * 86400} {
			f.Add(seed.kind, []byte(seed.data), int64(0), wait, true)
			f.Add(seed.kind, []byte(seed.data), int64(-90*86400), wait, false)
		}
	}
	const tolerance = 5 * time.Second
	f.Fuzz(func(t *testing.T, kindIdx uint8, data []byte, offsetSecs int64, waitSecs uint32, synced bool) {
		kind := hearth.Kinds[int(kindIdx)%len(hearth.Kinds)]
		ref := time.Now().UTC().Truncate(time.Microsecond) // central's clock when the edge received it
		edge := hearth.Window{Now: ref, MaxAge: hearth.DefaultRetention - time.Minute, MaxFuture: hearth.DefaultMaxFuture - time.Minute}
		c, err := hearth.Check(kind, data, hearth.Rules{Mode: hearth.ModeSeed, Window: edge, Child: "kid"})
		if err != nil || c.Payload.Rows() == 0 {
			return // refused at the edge, or acked without anything to keep
		}
		offset := time.Duration(offsetSecs%(100*365*86400)) * time.Second // edge wall clock minus central's
		arrival := ref.Add(time.Duration(waitSecs) * time.Second)         // central's clock when the batch arrives
		recv := ref
		if !synced {
			recv = ref.Add(offset)
		}
		bm := hearth.BatchMessage{Seq: 1, ChildHash: "kid", Type: string(kind), ReceivedAt: recv.Format(time.RFC3339Nano), Via: "ws", Data: c.Data, Synced: synced}
		clock := MeasureEdgeClock(arrival.Add(offset), arrival, tolerance)
		msgs, _, results := PrepareMessages([]hearth.BatchMessage{bm}, clock, hearth.DefaultRetention)
		if len(msgs) != 1 {
			t.Fatalf("edge acked %s %s (canonical %s) but central rejects it: %+v (synced %v, offset %s, waited %ds)",
				kind, data, c.Data, results[0], synced, offset, waitSecs)
		}
		if string(msgs[0].Data) != string(c.Data) {
			t.Fatalf("central's canonical form %s differs from the edge's %s", msgs[0].Data, c.Data)
		}
		if !reflect.DeepEqual(msgs[0].Payload, c.Payload) {
			t.Fatalf("central decodes %s to another payload than the edge acked", c.Data)
		}
	})
}
