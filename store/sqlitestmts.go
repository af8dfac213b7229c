package store

import (
	"container/list"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"reflect"
	"sync/atomic"

	"modernc.org/sqlite"
)

// sqliteDriverName is modernc's pure-Go SQLite driver with a statement
// cache on each connection. SQLite parses and plans every statement it is
// given. GORM's own cache (PrepareStmt) kept a statement prepared outside a
// transaction, but one first met inside a transaction it prepared on that
// transaction, and database/sql prepares such a statement again at every
// use (Tx.StmtContext); on a pool of one connection GORM cannot prepare on
// the database instead without waiting for the connection its transaction
// holds. Every statement of the worker's transactions was parsed and
// planned at every call (1.5 % of `handoff dev`'s CPU at the check-in
// ceiling, 2.5 % at the transfers': BENCHMARKS.md). A connection's cache
// serves statements in and out of transactions alike.
const sqliteDriverName = "handoff-sqlite"

// stmtCacheSize bounds each connection's cache: a few statements are built
// per call (lists of varying length), and the least recently used goes.
const stmtCacheSize = 256

func init() {
	sql.Register(sqliteDriverName, cachingDriver{base: &sqlite.Driver{}})
}

// sqlitePrepares counts the statements the cache prepared (for its test).
var sqlitePrepares atomic.Int64

type cachingDriver struct{ base driver.Driver }

func (d cachingDriver) Open(name string) (driver.Conn, error) {
	c, err := d.base.Open(name)
	if err != nil {
		return nil, err
	}
	bc, ok := c.(sqliteConn)
	if !ok {
		_ = c.Close()
		return nil, errors.New("store: the SQLite driver's connection lacks an interface database/sql uses")
	}
	return &cachingConn{sqliteConn: bc, byQuery: map[string]*list.Element{}, lru: list.New()}, nil
}

// The interfaces of modernc's connection that database/sql uses, all of
// which cachingConn passes on.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// cachingConn keeps the statements run on one connection. database/sql
// uses a connection from one goroutine at a time, so it needs no lock; a
// statement whose rows are still open when its query comes again (a query
// inside a loop over the same query's rows) is not shared: that run gets a
// statement of its own, closed after it.
type cachingConn struct {
	sqliteConn                          // modernc's, for all the cache does not change
	byQuery    map[string]*list.Element // of *cachedStmt
	lru        *list.List               // most recently used first
}

type cachedStmt struct {
	query string
	stmt  driver.Stmt
	busy  bool // its rows are open
}

// cached is query's statement, prepared now if the cache has none or its
// one is busy (then owned is true: the caller closes it after use).
func (c *cachingConn) cached(ctx context.Context, query string) (cs *cachedStmt, owned bool, err error) {
	if e, ok := c.byQuery[query]; ok {
		cs = e.Value.(*cachedStmt)
		if !cs.busy {
			c.lru.MoveToFront(e)
			return cs, false, nil
		}
	}
	st, err := c.sqliteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, false, err
	}
	sqlitePrepares.Add(1)
	fresh := &cachedStmt{query: query, stmt: st}
	if cs != nil { // the cached one is busy
		return fresh, true, nil
	}
	c.byQuery[query] = c.lru.PushFront(fresh)
	for c.lru.Len() > stmtCacheSize {
		c.evict(c.lru.Back())
	}
	return fresh, false, nil
}

func (c *cachingConn) evict(e *list.Element) {
	cs := c.lru.Remove(e).(*cachedStmt)
	delete(c.byQuery, cs.query)
	if !cs.busy { // a busy one is closed when its rows close
		_ = cs.stmt.Close()
	}
}

// forget drops query's statement after an error that may have left it
// unusable; the next run prepares it again.
func (c *cachingConn) forget(query string) {
	if e, ok := c.byQuery[query]; ok {
		c.evict(e)
	}
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cs, owned, err := c.cached(ctx, query)
	if err != nil {
		return nil, err
	}
	if owned {
		defer cs.stmt.Close()
	}
	res, err := cs.stmt.(driver.StmtExecContext).ExecContext(ctx, args)
	if err != nil && !owned {
		c.forget(query)
	}
	return res, err
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs, owned, err := c.cached(ctx, query)
	if err != nil {
		return nil, err
	}
	rows, err := cs.stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		if owned {
			_ = cs.stmt.Close()
		} else {
			c.forget(query)
		}
		return nil, err
	}
	cs.busy = true
	return &cachedRows{Rows: rows, conn: c, cs: cs, owned: owned}, nil
}

// cachedRows frees its statement for the next run when closed.
type cachedRows struct {
	driver.Rows
	conn   *cachingConn
	cs     *cachedStmt
	owned  bool
	closed bool
}

func (r *cachedRows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.Rows.Close()
	r.cs.busy = false
	if e, ok := r.conn.byQuery[r.cs.query]; r.owned || !ok || e.Value.(*cachedStmt) != r.cs {
		_ = r.cs.stmt.Close() // not (or no longer) the cache's
	}
	return err
}

// The column types modernc's rows tell, as they tell them.

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *cachedRows) ColumnTypeNullable(i int) (nullable, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

// Close closes the cached statements, then the connection.
func (c *cachingConn) Close() error {
	for e := c.lru.Front(); e != nil; e = e.Next() {
		if cs := e.Value.(*cachedStmt); !cs.busy {
			_ = cs.stmt.Close()
		}
	}
	c.byQuery, c.lru = map[string]*list.Element{}, list.New()
	return c.sqliteConn.Close()
}
