package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	gormsqlite "gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

func openSQLite(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "stmts.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	require.NoError(t, db.g.Exec(`CREATE TABLE t (x INTEGER)`).Error)
	return db
}

// The statements of a transaction are parsed and planned once per
// connection, not at every transaction: GORM's own cache prepared a
// statement first met inside a transaction again at every use.
func TestSQLiteTransactionsReuseTheirStatements(t *testing.T) {
	db := openSQLite(t)
	work := func(i int) error {
		return db.g.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec(`INSERT INTO t (x) VALUES (?)`, i).Error; err != nil {
				return err
			}
			var n int64
			return tx.Raw(`SELECT COUNT(*) FROM t WHERE x <= ?`, i).Scan(&n).Error
		})
	}
	require.NoError(t, work(0))
	before := sqlitePrepares.Load()
	for i := 1; i <= 5; i++ {
		require.NoError(t, work(i))
	}
	require.Zero(t, sqlitePrepares.Load()-before, "statements prepared again by later transactions")
	var n int64
	require.NoError(t, db.g.Raw(`SELECT COUNT(*) FROM t`).Scan(&n).Error)
	require.EqualValues(t, 6, n, "every transaction wrote its row")
}

// A query run again while its own rows are still open (inside a loop over
// them, in one transaction) gets a statement of its own, and both answer
// in full; afterwards the cached one serves again.
func TestSQLiteAQueryInsideItsOwnRowsGetsItsOwnStatement(t *testing.T) {
	db := openSQLite(t)
	for i := range 3 {
		require.NoError(t, db.g.Exec(`INSERT INTO t (x) VALUES (?)`, i).Error)
	}
	const q = `SELECT x FROM t ORDER BY x`
	require.NoError(t, db.g.Transaction(func(tx *gorm.DB) error {
		rows, err := tx.Raw(q).Rows()
		if err != nil {
			return err
		}
		defer rows.Close()
		var outer []int
		for rows.Next() {
			var x int
			if err := rows.Scan(&x); err != nil {
				return err
			}
			outer = append(outer, x)
			var inner []int
			if err := tx.Raw(q).Scan(&inner).Error; err != nil {
				return err
			}
			require.Equal(t, []int{0, 1, 2}, inner)
		}
		require.Equal(t, []int{0, 1, 2}, outer)
		return rows.Err()
	}))
	before := sqlitePrepares.Load()
	var again []int
	require.NoError(t, db.g.Raw(q).Scan(&again).Error)
	require.Equal(t, []int{0, 1, 2}, again)
	require.Zero(t, sqlitePrepares.Load()-before, "the cached statement serves once its rows are closed")
}

// The cache holds at most stmtCacheSize statements per connection, the
// least recently used going first, and every query still answers.
func TestSQLiteStatementCacheIsBounded(t *testing.T) {
	db := openSQLite(t)
	for i := range stmtCacheSize + 20 {
		var n int64
		require.NoError(t, db.g.Raw(fmt.Sprintf(`SELECT COUNT(*) + %d FROM t`, i)).Scan(&n).Error)
		require.EqualValues(t, i, n)
	}
	sqlDB, err := db.g.DB()
	require.NoError(t, err)
	conn, err := sqlDB.Conn(context.Background())
	require.NoError(t, err)
	require.NoError(t, conn.Raw(func(dc any) error {
		c := dc.(*cachingConn)
		require.Equal(t, stmtCacheSize, c.lru.Len())
		require.Len(t, c.byQuery, stmtCacheSize)
		return nil
	}))
	require.NoError(t, conn.Close()) // the pool's one connection
	// The first statements were evicted, and answer when run again.
	var n int64
	require.NoError(t, db.g.Raw(`SELECT COUNT(*) + 0 FROM t`).Scan(&n).Error)
	require.Zero(t, n)
}

// BenchmarkSQLiteCheckInTransaction runs the statements of a check-in's
// transaction (the visit inserted where its room is live, the room's event,
// the audit row) on SQLite: with each connection keeping its statements,
// and, as the floor, on GORM's statement cache over modernc's driver (the
// configuration before, which prepared a transaction's statements again at
// every call). Compare the two sub-benchmarks' ns/op.
//
//	go test -run '^$' -bench BenchmarkSQLiteCheckInTransaction -count 3 ./store/
func BenchmarkSQLiteCheckInTransaction(b *testing.B) {
	ctx := context.Background()
	open := func(b *testing.B, kept bool) *DB {
		path := filepath.Join(b.TempDir(), "bench.db")
		db, err := Open(ctx, "sqlite:"+path)
		require.NoError(b, err)
		_, err = db.Migrate(ctx)
		require.NoError(b, err)
		_, err = db.SeedDemo(ctx)
		require.NoError(b, err)
		if kept {
			return db
		}
		require.NoError(b, db.Close())
		_, driverDSN, err := ParseDSN("sqlite:" + path)
		require.NoError(b, err)
		g, err := gorm.Open(gormsqlite.New(gormsqlite.Config{DriverName: "sqlite", DSN: driverDSN}),
			&gorm.Config{SkipDefaultTransaction: true, TranslateError: true, PrepareStmt: true, Logger: logger.Discard,
				NowFunc: func() time.Time { return time.Now().UTC() }})
		require.NoError(b, err)
		sqlDB, err := g.DB()
		require.NoError(b, err)
		sqlDB.SetMaxOpenConns(1)
		return &DB{g: g, Dialect: SQLite, dsn: driverDSN}
	}
	for _, c := range []struct {
		name string
		kept bool
	}{{"kept-per-connection", true}, {"floor-gorm-cache", false}} {
		b.Run(c.name, func(b *testing.B) {
			db := open(b, c.kept)
			defer db.Close()
			room, err := db.With(ctx).Rooms.BySlug("dr-lee")
			require.NoError(b, err)
			b.ResetTimer()
			for b.Loop() {
				id := uuid.NewString()
				now := time.Now().UTC().Truncate(time.Microsecond)
				err := db.InTx(ctx, func(q Queries) error {
					v := Visit{ID: id, ClinicID: room.ClinicID, RoomID: room.ID, State: VisitWaiting,
						PatientName: Sealed("Pat Example"), TokenHash: id, CheckedInAt: now, UpdatedAt: now}
					if _, err := q.Visits.CreateInLiveRoom(v); err != nil {
						return err
					}
					if err := q.Outbox.ToRoom(room.ClinicID, id, room.ID, "visit.checked_in", map[string]string{"visitId": id}, now); err != nil {
						return err
					}
					return q.Audit.Append(AuditEvent{ClinicID: room.ClinicID, At: now, ActorKind: "patient", ActorID: id,
						Action: "visit.checked_in", VisitID: &id, RoomID: &room.ID})
				})
				require.NoError(b, err)
			}
		})
	}
}
