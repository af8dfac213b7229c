package store

import "sync"

// EventsChannel is the PostgreSQL NOTIFY channel that wakes every API
// process when events are committed. On PostgreSQL every insert into the
// outbox asks for a NOTIFY on it at commit, and takes the lock that makes
// event ids commit in order (migration 15).
const EventsChannel = "handoff_events"

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
