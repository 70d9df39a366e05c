package hearth

import "encoding/json"

// The edge → central API (docs/edge-api.md): the forwarder speaks it, central
// serves it, and both take its paths and shapes from here.
const (
	PathEdgeBatches = "/v1/edge/batches"
	PathEdgeRoster  = "/v1/edge/roster"
)

// BatchMessage is one message of an edge batch as it travels. Central
// checks its fields per message, so that one bad message rejects only itself.
type BatchMessage struct {
	Seq        uint64          `json:"seq"`
	ChildHash  string          `json:"child_hash"`
	Type       string          `json:"type"`
	ReceivedAt string          `json:"received_at"` // RFC 3339, the edge's clock
	Via        string          `json:"via"`
	Data       json.RawMessage `json:"data"`
	// Synced: received_at is already on central's clock (the edge had
	// measured its offset to central), so central does not shift it by
	// the batch's offset. Absent or false: the edge's own clock.
	Synced bool `json:"synced,omitempty"`
}

// Headers every forwarder request carries, so central can show each
// edge's state in its console.
const (
	HeaderEdgeID            = "Hearth-Edge-Id"
	HeaderEdgeVersion       = "Hearth-Edge-Version"
	HeaderBacklogMessages   = "Hearth-Backlog-Messages"
	HeaderBacklogOldestSecs = "Hearth-Backlog-Oldest-Seconds"
	// HeaderDeadLetters is optional: the dead letters the edge holds.
	HeaderDeadLetters = "Hearth-Dead-Letters"
)

// Statuses of a BatchResult.
const (
	BatchStatusOK       = "ok"
	BatchStatusRejected = "rejected"
)

// BatchResult is central's answer for one message of a batch.
type BatchResult struct {
	Seq    uint64 `json:"seq"`
	Status string `json:"status"`
	// Code is a rejection's short reason (unknown_child, invalid, …),
	// for the edge's dead letters; added later, so an edge must not
	// require it.
	Code  string `json:"code,omitempty"`
	Error string `json:"error,omitempty"`
}

// ScopeBatch is the "scope" of central's error answer that refuses a
// whole batch (its envelope could not be read): no message was judged.
const ScopeBatch = "batch"

// BatchReply is the body of central's 200 answer to a batch: one result
// per message, in order.
type BatchReply struct {
	Results []BatchResult `json:"results"`
}

// RosterReply is the body of GET PathEdgeRoster: the children of the
// token's home.
type RosterReply struct {
	Children []string `json:"children"`
	// RetentionDays is central's retention window: the edge never judges
	// with a longer one, or it would ack what central refuses.
	RetentionDays int `json:"retention_days,omitempty"`
	// Names are the names central knows of some children, by hash, for
	// the household's page (hearth-central child add --name). Additive:
	// an older edge ignores it.
	Names map[string]string `json:"names,omitempty"`
}
