package store

import (
	"context"
	"sync"
	"time"
)

// feedPoll bounds how late an event can be when a wake-up is lost (a dropped
// LISTEN connection): the feed reads the outbox at least this often.
const feedPoll = 2 * time.Second

// feedBatch is how many events one read of the outbox takes.
const feedBatch = 1000

// subscriptionBuffer is how many events a stream may fall behind before it
// reads the outbox itself to catch up. Every open page holds one: at 256 the
// buffers were a quarter of the heap with 1,800 pages open (BENCHMARKS.md).
const subscriptionBuffer = 16

// Feed reads the outbox once for all the live-event streams of this process
// and hands each stream the events it may see: a thousand open pages cost
// one query per commit, not a thousand (measured in BENCHMARKS.md).
//
// A stream that cannot keep up loses nothing: when its buffer is full it is
// marked lagged and reads what it missed from the outbox by id, which works
// because event ids commit in order (migration 15).
type Feed struct {
	db *DB

	mu       sync.Mutex
	started  bool
	last     int64 // newest id handed out
	byVisit  map[string]map[*Subscription]struct{}
	byRoom   map[string]map[*Subscription]struct{} // key: clinic + "/" + room
	stopFeed context.CancelFunc
}

// Subscription is one stream's share of the feed.
type Subscription struct {
	// C carries the stream's events in id order. Pointers: one event is
	// shared by every stream it goes to, and an idle stream's buffer is 16
	// words, not 16 events (10,000 open pages: 33 MB of buffers before).
	C chan *Event
	// Lagged receives when events were dropped because C was full: the
	// stream reads the outbox after its last id.
	Lagged chan struct{}
	keys   []feedKey
	feed   *Feed
}

type feedKey struct {
	byVisit bool
	key     string
}

// Feed is the database's event feed, started on first use.
func (db *DB) Feed() *Feed {
	db.feedOnce.Do(func() {
		db.feed = &Feed{db: db, byVisit: map[string]map[*Subscription]struct{}{}, byRoom: map[string]map[*Subscription]struct{}{}}
	})
	return db.feed
}

// ForVisit subscribes to the patient events of one visit.
func (f *Feed) ForVisit(clinicID, visitID string) (*Subscription, error) {
	return f.subscribe([]feedKey{{byVisit: true, key: clinicID + "/" + visitID}})
}

// ForRooms subscribes to the room events of rooms, and to the clinic's
// events for no room in particular.
func (f *Feed) ForRooms(clinicID string, rooms []string) (*Subscription, error) {
	keys := []feedKey{{key: clinicID + "/"}}
	for _, r := range rooms {
		keys = append(keys, feedKey{key: clinicID + "/" + r})
	}
	return f.subscribe(keys)
}

// subscribe fails only when the feed cannot learn where the outbox ends.
func (f *Feed) subscribe(keys []feedKey) (*Subscription, error) {
	s := &Subscription{C: make(chan *Event, subscriptionBuffer), Lagged: make(chan struct{}, 1), keys: keys, feed: f}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.started {
		if err := f.start(); err != nil {
			return nil, err
		}
	}
	for _, k := range keys {
		index := f.index(k)
		if index[k.key] == nil {
			index[k.key] = map[*Subscription]struct{}{}
		}
		index[k.key][s] = struct{}{}
	}
	return s, nil
}

func (f *Feed) index(k feedKey) map[string]map[*Subscription]struct{} {
	if k.byVisit {
		return f.byVisit
	}
	return f.byRoom
}

// Close ends the subscription.
func (s *Subscription) Close() {
	f := s.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range s.keys {
		index := f.index(k)
		delete(index[k.key], s)
		if len(index[k.key]) == 0 {
			delete(index, k.key)
		}
	}
}

// start begins reading after the newest event: the first stream reads what
// came before it subscribed from the outbox itself, after this. Called with
// f.mu held.
func (f *Feed) start() error {
	last, err := f.db.With(context.Background()).Outbox.NewestID()
	if err != nil {
		return err
	}
	f.last = last
	f.started = true
	ctx, cancel := context.WithCancel(context.Background())
	f.stopFeed = cancel
	go f.run(ctx)
	return nil
}

func (f *Feed) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopFeed != nil {
		f.stopFeed()
	}
}

func (f *Feed) run(ctx context.Context) {
	wake, unwatch := f.db.WatchEvents()
	defer unwatch()
	poll := time.NewTicker(feedPoll)
	defer poll.Stop()
	for {
		for n := feedBatch; n == feedBatch; {
			n = f.readOnce(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-poll.C:
		}
	}
}

// readOnce hands out the events after the last one and says how many.
func (f *Feed) readOnce(ctx context.Context) int {
	f.mu.Lock()
	after := f.last
	f.mu.Unlock()
	batch, err := f.db.With(ctx).Outbox.After(after, feedBatch)
	if err != nil {
		return 0 // the next wake-up or poll tries again; streams wait meanwhile
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range batch {
		f.dispatch(&batch[i])
		f.last = batch[i].ID
	}
	return len(batch)
}

func (f *Feed) dispatch(e *Event) {
	var subs map[*Subscription]struct{}
	switch {
	case e.Audience == AudiencePatient && e.VisitID != nil:
		subs = f.byVisit[e.ClinicID+"/"+*e.VisitID]
	case e.Audience == AudienceRoom && e.RoomID != nil:
		subs = f.byRoom[e.ClinicID+"/"+*e.RoomID]
	}
	for s := range subs {
		select {
		case s.C <- e:
		default:
			select {
			case s.Lagged <- struct{}{}:
			default:
			}
		}
	}
}
