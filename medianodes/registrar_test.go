package medianodes_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
	"github.com/handoff-telehealth/handoff/medianodes"
	"github.com/handoff-telehealth/handoff/store"
)

// waitFor polls cond every 20 ms for at most within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("not within %v: %s", within, what)
}

// Two nodes register; a clinic's calls live on one. That node dies (its
// process gone: no more beats, its row left behind): within StaleAfter
// placement sends the clinic's next call, and the dead node's
// participants, to the other. A node that drains takes nothing new; one
// that stops cleanly leaves the registry.
func TestANodeThatStopsHeartbeatingIsTakenOutOfPlacement(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		db := testdb.Open(t, dsn)
		const interval, stale = 100 * time.Millisecond, 400 * time.Millisecond
		place := medianodes.Placement{StaleAfter: stale}
		var loadA, loadB atomic.Int64
		loadB.Store(40) // b is busier: the clinic's calls would go to a
		start := func(id string, load *atomic.Int64) (*medianodes.Registrar, context.CancelFunc, chan error) {
			ctx, cancel := context.WithCancel(t.Context())
			r := &medianodes.Registrar{DB: db, Interval: interval, Participants: func() int { return int(load.Load()) },
				Node: store.MediaNode{ID: id, PublicURL: "wss://" + id + ".media.example/ws", ControlURL: "http://" + id + ":8090", Capacity: 100}}
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			return r, cancel, done
		}
		_, stopA, doneA := start("media-a", &loadA)
		rb, stopB, doneB := start("media-b", &loadB)
		choose := func(clinicCalls map[string]int) string {
			nodes, err := db.With(t.Context()).MediaNodes.All()
			if err != nil {
				t.Fatal(err)
			}
			n, err := place.Choose(nodes, clinicCalls, time.Now())
			if errors.Is(err, medianodes.ErrNoNode) {
				return ""
			}
			if err != nil {
				t.Fatal(err)
			}
			return n.ID
		}
		waitFor(t, 5*time.Second, "both nodes registered", func() bool { return choose(nil) == "media-a" && choose(map[string]int{"media-b": 1}) == "media-b" })

		// a dies: its registrar stops without removing the row, as a killed
		// process would (simulated by the registry's own row going stale).
		loadA.Store(1)
		waitFor(t, time.Second, "a's load beat in", func() bool {
			n, err := db.With(t.Context()).MediaNodes.Get("media-a")
			return err == nil && n.Participants == 1
		})
		killed := time.Now()
		stopA()
		if err := <-doneA; err != nil {
			t.Fatal(err)
		}
		// A clean stop removed the row; put it back as a dead node's row is
		// left: last beat at the moment of death.
		if err := db.With(t.Context()).MediaNodes.Heartbeat(store.MediaNode{ID: "media-a", PublicURL: "wss://media-a.media.example/ws", ControlURL: "http://media-a:8090",
			Capacity: 100, Participants: 1, StartedAt: killed.UTC(), HeartbeatAt: killed.UTC()}); err != nil {
			t.Fatal(err)
		}
		clinicOnA := map[string]int{"media-a": 3}
		if got := choose(clinicOnA); got != "media-a" {
			t.Fatalf("right after its last beat the clinic's node is still chosen; got %q", got)
		}
		waitFor(t, stale+time.Second, "the dead node out of placement", func() bool { return choose(clinicOnA) == "media-b" })
		if gone := time.Since(killed); gone > stale+300*time.Millisecond {
			t.Fatalf("the dead node was chosen for %v after its last beat", gone)
		}

		// b drains: nothing takes a new call now.
		rb.Drain()
		waitFor(t, time.Second, "a draining node takes no new call", func() bool { return choose(nil) == "" })
		n, err := db.With(t.Context()).MediaNodes.Get("media-b")
		if err != nil || !n.Draining {
			t.Fatalf("b's row does not say it drains: %+v, %v", n, err)
		}
		// b stops cleanly: its row goes.
		stopB()
		if err := <-doneB; err != nil {
			t.Fatal(err)
		}
		if _, err := db.With(t.Context()).MediaNodes.Get("media-b"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a node that stopped cleanly is still registered: %v", err)
		}
	})
}
