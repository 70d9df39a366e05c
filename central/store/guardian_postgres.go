package store

import (
	"context"
	"fmt"
)

// GuardianPostgres is the PostgreSQL store of the GuardianAI schema.
type GuardianPostgres struct {
	Store // placeholder until the PostgreSQL writes land
	db    *Postgres
}

// OpenGuardianPostgres opens the GuardianAI dashboard's PostgreSQL database
// for the GuardianAI schema.
func OpenGuardianPostgres(ctx context.Context, url string, opts Options) (Store, error) {
	return nil, fmt.Errorf("open postgres: %w: the guardianai schema is not available on PostgreSQL yet", ErrInvalid)
}
