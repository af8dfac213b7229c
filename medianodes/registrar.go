package medianodes

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/handoff-telehealth/handoff/store"
)

// Registrar keeps one media node's row in the registry: a heartbeat every
// Interval with the node's participant count, draining once Drain is
// called, and the row removed when Run returns (a node that dies instead
// leaves a row whose heartbeat goes stale).
type Registrar struct {
	DB   *store.DB
	Node store.MediaNode // ID, URLs and Capacity
	// Participants counts the node's sessions now.
	Participants func() int
	// Interval is HeartbeatInterval unless set.
	Interval time.Duration

	draining atomic.Bool
	kickOnce sync.Once
	kick     chan struct{}
}

// Drain marks the node as taking no new calls, at the next beat (which it
// hastens).
func (r *Registrar) Drain() {
	r.draining.Store(true)
	select {
	case r.kicked() <- struct{}{}:
	default:
	}
}

func (r *Registrar) kicked() chan struct{} {
	r.kickOnce.Do(func() { r.kick = make(chan struct{}, 1) })
	return r.kick
}

// Run beats until ctx ends, then removes the node's row. A failed beat
// (the database away for a moment) is tried again at the next one; the
// first beat's error is returned, so that a node that cannot register at
// all does not start.
func (r *Registrar) Run(ctx context.Context) error {
	interval := r.Interval
	if interval <= 0 {
		interval = HeartbeatInterval
	}
	kick := r.kicked()
	r.Node.StartedAt = time.Now().UTC()
	if err := r.beat(ctx); err != nil {
		return err
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			// The row goes with the node; a fresh context: ctx is over.
			cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return r.DB.With(cleanup).MediaNodes.Remove(r.Node.ID)
		case <-tick.C:
		case <-kick:
		}
		_ = r.beat(ctx)
	}
}

func (r *Registrar) beat(ctx context.Context) error {
	n := r.Node
	n.HeartbeatAt, n.Draining = time.Now().UTC(), r.draining.Load()
	if r.Participants != nil {
		n.Participants = r.Participants()
	}
	return r.DB.With(ctx).MediaNodes.Heartbeat(n)
}
