package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// ListenForEvents wakes this process's live-event streams whenever any
// process commits events, by LISTENing on PostgreSQL, until ctx ends. It
// reconnects after errors; on SQLite (one process) it only waits.
func (db *DB) ListenForEvents(ctx context.Context) error {
	if db.Dialect != Postgres {
		<-ctx.Done()
		return nil
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := db.listenOnce(ctx)
		if ctx.Err() != nil {
			break
		}
		_ = err // streams also poll, so a lost connection only slows them
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return nil
}

func (db *DB) listenOnce(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, db.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+EventsChannel); err != nil {
		return err
	}
	db.EventsCommitted() // events may have been committed while we were not listening
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		db.EventsCommitted()
	}
}
