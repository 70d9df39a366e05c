// Package hearth holds the domain of the hearth ingest appliance: the data
// messages phones send, their validation rules and the errors shared by the
// edge daemon, the forwarder and central. It does no I/O.
package hearth

import (
	"encoding/json"
	"time"
)

// Kind names the type of a data message, exactly as the seed protocol spells it.
type Kind string

// The three kinds of data a phone sends.
const (
	KindScreenTime Kind = "screen_time"
	KindLocation   Kind = "location"
	KindSiteAccess Kind = "site_access"
)

// Kinds lists every kind in a fixed order (for metrics and loops).
var Kinds = []Kind{KindScreenTime, KindLocation, KindSiteAccess}

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	return k == KindScreenTime || k == KindLocation || k == KindSiteAccess
}

// Via names the transport a message arrived on.
const (
	ViaWS   = "ws"
	ViaHTTP = "http"
)

// Message is one validated data message from one child's phone. Data holds
// the payload as compact JSON, exactly the "data" object of the device frame
// (for site_access: {"logs":[…]}); it has passed Validate.
type Message struct {
	ChildHash  string          `json:"child_hash"`
	Kind       Kind            `json:"type"`
	ReceivedAt time.Time       `json:"received_at"`
	Via        string          `json:"via"`
	Data       json.RawMessage `json:"data"`
	// Synced tells that ReceivedAt is on central's clock: the edge had
	// measured its offset to central when it received the message. When
	// false, ReceivedAt is the receiver's own wall clock, which central
	// corrects by the offset it measures from the batch's sent_at.
	Synced bool `json:"synced,omitempty"`
	// Payload is Data's typed form when the message was checked in this
	// process (Check); the store writes from it. Zero when only Data is
	// known, as for a message read back from the outbox.
	Payload Payload `json:"-"`
}

// Size is the approximate number of bytes the message occupies in storage;
// quotas are counted with it.
func (m *Message) Size() int {
	return len(m.ChildHash) + len(m.Kind) + len(m.Via) + len(m.Data) + 64
}
