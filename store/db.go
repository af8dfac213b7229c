// Package store holds Handoff's own data: clinics, users, rooms, the visit
// projection, calls, app sessions, the audit trail and the event outbox.
// The same schema runs on PostgreSQL (production, tests) and on a pure-Go
// SQLite file (the embedded default of `handoff dev`).
package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dialect names the SQL engine behind a DSN.
type Dialect string

const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DB is the app database with the dialect it speaks.
type DB struct {
	g       *gorm.DB // every query goes through Queries (DB.With, DB.InTx)
	Dialect Dialect

	dsn    string
	once   sync.Once
	events *notifier

	feedOnce sync.Once
	feed     *Feed
}

// ParseDSN tells which engine a DSN is for and the driver-level DSN to open.
// Accepted: postgres://… or postgresql://…, and sqlite:PATH.
func ParseDSN(dsn string) (Dialect, string, error) {
	switch {
	case dsn == "":
		return "", "", errors.New("no database configured: set --db or HANDOFF_DB")
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		u, err := url.Parse(dsn)
		if err != nil {
			return "", "", fmt.Errorf("database DSN is not a valid URL: %w", err)
		}
		return Postgres, requireTLSOffHost(u), nil
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" {
			return "", "", errors.New("sqlite DSN names no file: use sqlite:PATH")
		}
		// Foreign keys are off by default in SQLite; WAL lets readers run beside
		// the writer; busy_timeout turns lock contention into waiting, not
		// errors. temp_store(memory) keeps each statement's journal in small
		// chunks: otherwise every insert after the first in a transaction took
		// a 64 KiB chunk, which the pure-Go allocator maps and unmaps with a
		// system call each (BENCHMARKS.md).
		return SQLite, "file:" + path + "?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_pragma=temp_store(memory)", nil
	default:
		return "", "", fmt.Errorf("database DSN %q is neither postgres://… nor sqlite:PATH", Redact(dsn))
	}
}

// requireTLSOffHost makes a PostgreSQL server on another host encrypted
// and verified unless the DSN says otherwise: with no sslmode the driver
// would fall back to plain text, and patient names cross that link. A
// server on this host (loopback or a socket) is left as it is.
func requireTLSOffHost(u *url.URL) string {
	q := u.Query()
	if q.Has("sslmode") || isLocalHost(u.Hostname()) || q.Has("host") {
		return u.String()
	}
	q.Set("sslmode", "verify-full")
	u.RawQuery = q.Encode()
	return u.String()
}

func isLocalHost(h string) bool {
	if h == "" || h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Redact hides the password of a DSN so it can be printed.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Open connects to the database named by dsn and checks that it answers.
func Open(ctx context.Context, dsn string) (*DB, error) {
	dialect, driverDSN, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	var dialector gorm.Dialector
	switch dialect {
	case Postgres:
		dialector = postgres.Open(driverDSN)
	case SQLite:
		dir := filepath.Dir(strings.TrimPrefix(dsn, "sqlite:"))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("cannot create the directory of the SQLite database: %w", err)
		}
		// The file holds patient data: only its owner reads it. SQLite
		// gives its -wal and -shm files the same mode.
		f, err := os.OpenFile(strings.TrimPrefix(dsn, "sqlite:"), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, fmt.Errorf("cannot create the SQLite database: %w", err)
		}
		_ = f.Close()
		// GORM's SQLite dialect over modernc's pure-Go driver (the one the
		// embedded Temporal server uses), with each connection keeping the
		// statements it prepared (sqlitestmts.go).
		dialector = sqlite.New(sqlite.Config{DriverName: sqliteDriverName, DSN: driverDSN})
	}
	gdb, err := gorm.Open(dialector, &gorm.Config{
		Logger:                 logger.Discard, // queries carry patient data; never log them
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
		TranslateError:         true,
		// No GORM statement cache: SQLite's connections keep their own
		// (sqlitestmts.go), PostgreSQL's driver too.
	})
	if err != nil {
		return nil, fmt.Errorf("cannot connect to %s database %s: %w", dialect, Redact(dsn), err)
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		return nil, err
	}
	if dialect == SQLite {
		// One writer at a time is all SQLite allows; a single connection keeps
		// writers from failing with SQLITE_BUSY under load.
		sqlDB.SetMaxOpenConns(1)
	} else {
		// Keep as many idle as may be open: database/sql keeps 2 by default, so
		// under load connections were closed and opened again (a PostgreSQL
		// backend started per query), which made transfers 1.5 s at 20/s on
		// Postgres against 28 ms on SQLite (BENCHMARKS.md).
		sqlDB.SetMaxOpenConns(20)
		sqlDB.SetMaxIdleConns(20)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("cannot connect to %s database %s: %w", dialect, Redact(dsn), err)
	}
	return &DB{g: gdb, Dialect: dialect, dsn: driverDSN}, nil
}

// Close releases the connection pool.
func (db *DB) Close() error {
	db.feedOnce.Do(func() {}) // a feed started by another goroutine is seen here
	if db.feed != nil {
		db.feed.stop()
	}
	sqlDB, err := db.g.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	sqlDB, err := db.g.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// Gorm is the GORM handle, for tests that arrange or inspect rows directly.
// Production code reads and writes through the named queries (DB.With,
// DB.InTx); TestNoGORMOutsideTheStore keeps it so.
func (db *DB) Gorm() *gorm.DB { return db.g }
