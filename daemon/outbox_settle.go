package daemon

import "github.com/guardianai/hearth/config"

// bindOutboxSettle binds outbox_settle_delay. The deletes of forwarded
// messages are queued and committed with the next append, so that each
// message costs one commit, not two (flash wear); with no append they are
// committed after this delay. A crash before that only makes the edge send
// those messages again, which central absorbs. 0 takes the outbox's 5s.
func (c *Config) bindOutboxSettle(b *config.Binder) {
	b.Duration(&c.OutboxSettleDelay, "outbox-settle-delay",
		"how long deletes of forwarded messages wait for an append to share its commit (0: 5s)")
}
