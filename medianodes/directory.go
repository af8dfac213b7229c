package medianodes

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/handoff-telehealth/handoff/activities"
	"github.com/handoff-telehealth/handoff/store"
)

// Alive tells whether n still serves the calls it holds: its heartbeat is
// recent. A draining or full node still serves them; only a node that
// stopped (or left the registry) has its calls moved.
func (p Placement) Alive(n store.MediaNode, now time.Time) bool {
	return now.Sub(n.HeartbeatAt) <= p.stale()
}

func (p Placement) stale() time.Duration {
	if p.StaleAfter > 0 {
		return p.StaleAfter
	}
	return StaleAfter
}

// ForNewCall is the node a clinic's new call (or a waiting patient's media
// session) goes on, read from the registry.
func (p Placement) ForNewCall(q store.Queries, clinicID string, now time.Time) (store.MediaNode, error) {
	nodes, err := q.MediaNodes.All()
	if err != nil {
		return store.MediaNode{}, err
	}
	calls, err := q.Calls.OpenCallsByNode(clinicID)
	if err != nil {
		return store.MediaNode{}, err
	}
	return p.Choose(nodes, calls, now)
}

// ForCall is the node a call lives on. When that node is gone (its
// heartbeat stale, or its row removed by a drain that ended), the call
// moves to the node a new call of its clinic would go on, and its
// participants are offered that node: their pages reconnect there and
// rejoin the same call.
func (p Placement) ForCall(q store.Queries, call store.Call, now time.Time) (store.MediaNode, error) {
	n, err := q.MediaNodes.Get(call.MediaNode)
	if err == nil && p.Alive(n, now) {
		return n, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.MediaNode{}, err
	}
	next, err := p.ForNewCall(q, call.ClinicID, now)
	if err != nil {
		return store.MediaNode{}, err
	}
	moved, err := q.Calls.MovedToNode(call.ID, call.MediaNode, next.ID)
	if err != nil {
		return store.MediaNode{}, err
	}
	if moved.MediaNode == next.ID {
		return next, nil
	}
	return q.MediaNodes.Get(moved.MediaNode) // another caller moved it first
}

// NewRegistry is the registry whose nodes' control APIs take token,
// reached through newControl (media.NewControlClient).
func NewRegistry(token string, newControl func(url, token string) activities.Media) *Registry {
	return &Registry{ControlToken: token, NewControl: newControl}
}

// Registry is the set of media nodes registered in the app database:
// calls are placed on them, and each is reached at its own control URL.
type Registry struct {
	Placement Placement
	// ControlToken is the service token every node's control API takes.
	ControlToken string
	// NewControl reaches a node's control API (media.NewControlClient).
	NewControl func(url, token string) activities.Media

	mu      sync.Mutex
	clients map[string]activities.Media // by control URL
}

// ForNewCall implements activities.MediaNodes.
func (r *Registry) ForNewCall(q store.Queries, clinicID string) (store.MediaNode, error) {
	return r.Placement.ForNewCall(q, clinicID, time.Now().UTC())
}

// ForCall implements activities.MediaNodes.
func (r *Registry) ForCall(q store.Queries, call store.Call) (store.MediaNode, error) {
	return r.Placement.ForCall(q, call, time.Now().UTC())
}

// Control is n's control API, one client per node kept for its
// connections.
func (r *Registry) Control(n store.MediaNode) activities.Media {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.clients == nil {
		r.clients = map[string]activities.Media{}
	}
	c, ok := r.clients[n.ControlURL]
	if !ok {
		c = r.NewControl(n.ControlURL, r.ControlToken)
		r.clients[n.ControlURL] = c
	}
	return c
}

// Origins lists the registered nodes' public signaling URLs, read at most
// once every HeartbeatInterval: the pages' Content-Security-Policy lets
// them connect there.
func (r *Registry) Origins(db *store.DB) func() []string {
	var (
		mu   sync.Mutex
		at   time.Time
		last []string
	)
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(at) < HeartbeatInterval {
			return last
		}
		nodes, err := db.With(context.Background()).MediaNodes.All()
		if err != nil {
			return last // the database away for a moment: the last list
		}
		at, last = time.Now(), last[:0:0]
		for _, n := range nodes {
			last = append(last, n.PublicURL)
		}
		return last
	}
}
