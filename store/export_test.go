package store

import (
	"context"

	"gorm.io/gorm"
)

// MigrateTo applies the migrations up to version upTo, for tests of a
// migration's data conversion.
func (db *DB) MigrateTo(ctx context.Context, upTo int) ([]int, error) { return db.migrateTo(ctx, upTo) }

// Plans runs fn against a dry-run session, which builds each statement
// without sending it, and returns SQLite's query plan for each statement
// as built, its parameters still bound (as a prepared statement sees them).
func (db *DB) Plans(t interface{ Fatal(...any) }, fn func(Queries)) []string {
	type built struct {
		sql  string
		vars []any
	}
	var stmts []built
	dry := db.g.Session(&gorm.Session{DryRun: true, NewDB: true})
	if err := dry.Callback().Query().After("gorm:query").Register("test:capture", func(tx *gorm.DB) {
		stmts = append(stmts, built{tx.Statement.SQL.String(), append([]any(nil), tx.Statement.Vars...)})
	}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = dry.Callback().Query().Remove("test:capture") }()
	fn(db.queries(conn{g: dry, db: db}))
	var plans []string
	for _, s := range stmts {
		var rows []struct {
			ID, Parent, Notused int
			Detail              string
		}
		if err := db.g.Raw("EXPLAIN QUERY PLAN "+s.sql, s.vars...).Scan(&rows).Error; err != nil {
			t.Fatal(err)
		}
		plan := s.sql
		for _, r := range rows {
			plan += "\n" + r.Detail
		}
		plans = append(plans, plan)
	}
	return plans
}
