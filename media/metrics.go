package media

import (
	"fmt"
	"net/http"
	"sync/atomic"
)

// Metrics are the media node's counters.
type Metrics struct {
	ActiveCalls  atomic.Int64
	Participants atomic.Int64
	Packets      atomic.Int64
	Bytes        atomic.Int64
	PLIs         atomic.Int64
	// KeyframeRequests are the PLIs and FIRs subscribers sent; PLIs the
	// ones passed on to publishers (keyframeInterval apart at most).
	KeyframeRequests atomic.Int64
	VideoPauses      atomic.Int64
	ICERestarts      atomic.Int64
	SlowClosed       atomic.Int64
	Replaced         atomic.Int64
	Resumed          atomic.Int64
}

// ServeHTTP writes the counters in Prometheus text format.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	for _, c := range []struct {
		name, kind, help string
		v                int64
	}{
		{"handoff_media_active_calls", "gauge", "Calls open on this media node.", m.ActiveCalls.Load()},
		{"handoff_media_participants", "gauge", "Signaling sessions connected.", m.Participants.Load()},
		{"handoff_media_forwarded_packets_total", "counter", "RTP packets forwarded from publishers.", m.Packets.Load()},
		{"handoff_media_forwarded_bytes_total", "counter", "RTP bytes forwarded from publishers.", m.Bytes.Load()},
		{"handoff_media_pli_total", "counter", "Keyframe requests sent to publishers (at most one per track per 500 ms).", m.PLIs.Load()},
		{"handoff_media_video_pauses_total", "counter", "Times a subscriber's video was paused to keep its audio.", m.VideoPauses.Load()},
		{"handoff_media_keyframe_requests_total", "counter", "Keyframe requests (PLI, FIR) received from subscribers.", m.KeyframeRequests.Load()},
		{"handoff_media_ice_restarts_total", "counter", "ICE restarts (a participant's network changed).", m.ICERestarts.Load()},
		{"handoff_media_slow_sessions_closed_total", "counter", "Signaling sessions closed because the client stopped reading.", m.SlowClosed.Load()},
		{"handoff_media_sessions_resumed_total", "counter", "Signaling sessions resumed on a new socket (a changed network).", m.Resumed.Load()},
		{"handoff_media_sessions_replaced_total", "counter", "Signaling sessions replaced by a newer one of the same participant.", m.Replaced.Load()},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", c.name, c.help, c.name, c.kind, c.name, c.v)
	}
}
