package store

// PoolStats returns the state of the store's connection pool.
func (g *GuardianPostgres) PoolStats() PoolStats { return g.db.pool.stats() }
