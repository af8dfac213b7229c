package store

import "context"

// MigrateTo applies the migrations up to version upTo, for tests of a
// migration's data conversion.
func (db *DB) MigrateTo(ctx context.Context, upTo int) ([]int, error) { return db.migrateTo(ctx, upTo) }
