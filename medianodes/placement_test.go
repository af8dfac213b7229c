package medianodes

import (
	"errors"
	"testing"
	"time"

	"github.com/handoff-telehealth/handoff/store"
)

var now = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func node(id string, participants, capacity int) store.MediaNode {
	return store.MediaNode{ID: id, Capacity: capacity, Participants: participants, HeartbeatAt: now.Add(-time.Second)}
}

func TestPlacement(t *testing.T) {
	draining := node("a", 0, 100)
	draining.Draining = true
	stale := node("a", 0, 100)
	stale.HeartbeatAt = now.Add(-StaleAfter - time.Second)
	cases := []struct {
		name   string
		nodes  []store.MediaNode
		clinic map[string]int
		want   string // "" : ErrNoNode
	}{
		{"the least loaded node", []store.MediaNode{node("a", 50, 100), node("b", 10, 100), node("c", 30, 100)}, nil, "b"},
		{"load is a share of capacity", []store.MediaNode{node("a", 20, 100), node("b", 30, 300)}, nil, "b"},
		{"equal load: the lowest id", []store.MediaNode{node("b", 10, 100), node("a", 10, 100)}, nil, "a"},
		{"the clinic's node, though busier", []store.MediaNode{node("a", 10, 100), node("b", 60, 100)}, map[string]int{"b": 3}, "b"},
		{"the node with most of the clinic's calls", []store.MediaNode{node("a", 10, 100), node("b", 20, 100)}, map[string]int{"a": 1, "b": 4}, "b"},
		{"the clinic's node past 80 %: the least loaded", []store.MediaNode{node("a", 10, 100), node("b", 85, 100)}, map[string]int{"b": 3}, "a"},
		{"a draining node takes nothing", []store.MediaNode{draining, node("b", 90, 100)}, map[string]int{"a": 5}, "b"},
		{"a node that stopped heartbeating takes nothing", []store.MediaNode{stale, node("b", 90, 100)}, nil, "b"},
		{"a full node takes nothing", []store.MediaNode{node("a", 100, 100)}, nil, ""},
		{"no node", nil, nil, ""},
		{"calls on a node no longer registered", []store.MediaNode{node("b", 10, 100)}, map[string]int{"gone": 9}, "b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Placement{}.Choose(c.nodes, c.clinic, now)
			if c.want == "" {
				if !errors.Is(err, ErrNoNode) {
					t.Fatalf("got %q, %v; want ErrNoNode", got.ID, err)
				}
				return
			}
			if err != nil || got.ID != c.want {
				t.Fatalf("got %q, %v; want %q", got.ID, err, c.want)
			}
		})
	}
}
