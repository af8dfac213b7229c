// Package medianodes holds the media-node registry's rules: which nodes
// are alive (each heartbeats its row in the app database), and on which a
// new call or a waiting patient's session goes.
package medianodes

import (
	"errors"
	"time"

	"github.com/handoff-telehealth/handoff/store"
)

// StaleAfter: a node whose last heartbeat is older than this is taken out
// of placement (three missed beats at HeartbeatInterval).
const StaleAfter = 3 * HeartbeatInterval

// HeartbeatInterval is how often a node writes its row.
const HeartbeatInterval = 2 * time.Second

// affinityShare: the node that already holds a clinic's calls takes its
// next one too (so that most transfers stay on one node) while it is
// below this share of its capacity; past it, the least loaded node does.
const affinityShare = 0.8

// ErrNoNode is what placement answers when no node can take a call: none
// alive, all draining or full.
var ErrNoNode = errors.New("no media node can take a call")

// Placement chooses nodes. StaleAfter is StaleAfter unless set (tests
// shorten it).
type Placement struct {
	StaleAfter time.Duration
}

// Healthy tells whether n takes new calls at now: heartbeating, not
// draining, below its capacity.
func (p Placement) Healthy(n store.MediaNode, now time.Time) bool {
	return !n.Draining && p.Alive(n, now) && n.Participants < n.Capacity
}

// Choose picks the node for a clinic's new call (or a waiting patient's
// session): the healthy node that holds most of the clinic's open calls
// (clinicCalls: calls by node) while it is below affinityShare of its
// capacity, and otherwise the healthy node with the most room left, as a
// share of its capacity; ties go to the lowest id, so that concurrent
// callers agree.
func (p Placement) Choose(nodes []store.MediaNode, clinicCalls map[string]int, now time.Time) (store.MediaNode, error) {
	var best, affine *store.MediaNode
	for i := range nodes {
		n := &nodes[i]
		if !p.Healthy(*n, now) {
			continue
		}
		if best == nil || load(*n) < load(*best) || (load(*n) == load(*best) && n.ID < best.ID) {
			best = n
		}
		if c := clinicCalls[n.ID]; c > 0 && load(*n) < affinityShare {
			if affine == nil || c > clinicCalls[affine.ID] || (c == clinicCalls[affine.ID] && n.ID < affine.ID) {
				affine = n
			}
		}
	}
	switch {
	case affine != nil:
		return *affine, nil
	case best != nil:
		return *best, nil
	}
	return store.MediaNode{}, ErrNoNode
}

// load is the share of n's capacity in use.
func load(n store.MediaNode) float64 { return float64(n.Participants) / float64(n.Capacity) }
