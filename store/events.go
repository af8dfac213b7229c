package store

import (
	"sync"

	"gorm.io/gorm"
)

// EventsChannel is the PostgreSQL NOTIFY channel that wakes every API
// process when events are committed.
const EventsChannel = "handoff_events"

// BeginEvents is called in a transaction before it writes events. On
// PostgreSQL it serializes event-writing transactions, so that ids commit in
// the order they are handed out and a reader that has seen id N never later
// finds a smaller id appear; and it asks for a NOTIFY at commit.
func (db *DB) BeginEvents(tx *gorm.DB) error {
	if db.Dialect != Postgres {
		return nil // SQLite has one writer at a time already
	}
	// One statement, one round trip: the NOTIFY is sent at commit wherever
	// in the transaction it is asked for.
	return tx.Exec(`SELECT pg_advisory_xact_lock(7283462), pg_notify(?, '')`, EventsChannel).Error
}

// EventsCommitted wakes this process's live-event streams: after a commit
// here that wrote events, or on a NOTIFY for one in another process.
func (db *DB) EventsCommitted() { db.notifier().notify() }

// WatchEvents returns a channel that receives after events are committed in
// this process, and a function to stop watching.
func (db *DB) WatchEvents() (<-chan struct{}, func()) { return db.notifier().watch() }

func (db *DB) notifier() *notifier {
	db.once.Do(func() { db.events = &notifier{watchers: map[chan struct{}]struct{}{}} })
	return db.events
}

type notifier struct {
	mu       sync.Mutex
	watchers map[chan struct{}]struct{}
}

func (n *notifier) watch() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	n.watchers[ch] = struct{}{}
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		delete(n.watchers, ch)
		n.mu.Unlock()
	}
}

func (n *notifier) notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.watchers {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}
