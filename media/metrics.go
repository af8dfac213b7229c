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
	ICERestarts      atomic.Int64
	SlowClosed       atomic.Int64
	Replaced         atomic.Int64
	Resumed          atomic.Int64
	VideoPauses      atomic.Int64
	// LayerSwitches are subscribers moved to another camera layer; Probes
	// the allocator's probes of a subscriber's link, and how they ended.
	LayerSwitches   atomic.Int64
	Probes          atomic.Int64
	ProbesSucceeded atomic.Int64
	ProbesFailed    atomic.Int64
	PaddingPackets  atomic.Int64

	// quality reads the subscribers' receiver reports at each scrape (set
	// by the SFU).
	quality func() DownQuality
}

// DownQuality sorts the streams the node sends to subscribers by what
// their receiver reports say (loss and jitter): labels name a class,
// never a participant.
type DownQuality struct {
	Good, Fair, Poor, Unreported int
	// MaxJitter is the worst jitter reported, in seconds; MaxRTT the
	// longest round trip a subscriber's reports show.
	MaxJitter, MaxRTT float64
	// VideoByLayer counts the video streams sent to subscribers by the
	// camera layer they carry now (index: quarter, half, full), and
	// VideoPaused those paused to keep a subscriber's sound.
	VideoByLayer [maxLayers]int
	VideoPaused  int
	// Estimates are the subscribers' downlink estimates in bit/s (one per
	// subscriber with an estimator), for a histogram.
	Estimates []int
}

// estimateBuckets are the histogram's upper bounds for subscribers'
// downlink estimates, in bit/s: from a starved link to a good one.
var estimateBuckets = []int{64_000, 128_000, 256_000, 512_000, 1_000_000, 2_000_000, 4_000_000}

// qualityOf classes one stream: good under 2 % loss and 30 ms jitter,
// poor from 10 % or 100 ms (the page calls its own connection poor from
// 10 % loss or a 600 ms round trip).
func qualityOf(lossPct, jitterSec float64) string {
	switch {
	case lossPct >= 10 || jitterSec >= 0.1:
		return "poor"
	case lossPct >= 2 || jitterSec >= 0.03:
		return "fair"
	}
	return "good"
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
		{"handoff_media_pli_total", "counter", "Keyframe requests sent to publishers (at most one per layer per 500 ms for the lowest, per second above).", m.PLIs.Load()},
		{"handoff_media_video_pauses_total", "counter", "Times a subscriber's video was paused to keep its audio.", m.VideoPauses.Load()},
		{"handoff_media_layer_switches_total", "counter", "Times a subscriber was moved to another camera layer (at a keyframe).", m.LayerSwitches.Load()},
		{"handoff_media_probes_total", "counter", "Probes of a subscriber's link (padding up to the rate a higher layer needs).", m.Probes.Load()},
		{"handoff_media_probes_succeeded_total", "counter", "Probes after which the estimate did not drop.", m.ProbesSucceeded.Load()},
		{"handoff_media_probes_failed_total", "counter", "Probes during which the estimate dropped (the link could not carry more).", m.ProbesFailed.Load()},
		{"handoff_media_padding_packets_total", "counter", "Padding packets sent to probe subscribers' links.", m.PaddingPackets.Load()},
		{"handoff_media_keyframe_requests_total", "counter", "Keyframe requests (PLI, FIR) received from subscribers.", m.KeyframeRequests.Load()},
		{"handoff_media_ice_restarts_total", "counter", "ICE restarts (a participant's network changed).", m.ICERestarts.Load()},
		{"handoff_media_slow_sessions_closed_total", "counter", "Signaling sessions closed because the client stopped reading.", m.SlowClosed.Load()},
		{"handoff_media_sessions_resumed_total", "counter", "Signaling sessions resumed on a new socket (a changed network).", m.Resumed.Load()},
		{"handoff_media_sessions_replaced_total", "counter", "Signaling sessions replaced by a newer one of the same participant.", m.Replaced.Load()},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", c.name, c.help, c.name, c.kind, c.name, c.v)
	}
	if m.quality == nil {
		return
	}
	q := m.quality()
	fmt.Fprintf(w, "# HELP handoff_media_down_streams Streams sent to subscribers, by the quality their receiver reports say.\n# TYPE handoff_media_down_streams gauge\n")
	for _, c := range []struct {
		class string
		n     int
	}{{"good", q.Good}, {"fair", q.Fair}, {"poor", q.Poor}, {"unreported", q.Unreported}} {
		fmt.Fprintf(w, "handoff_media_down_streams{quality=%q} %d\n", c.class, c.n)
	}
	fmt.Fprintf(w, "# HELP handoff_media_down_jitter_max_seconds The worst jitter a subscriber reports.\n# TYPE handoff_media_down_jitter_max_seconds gauge\nhandoff_media_down_jitter_max_seconds %g\n", q.MaxJitter)
	fmt.Fprintf(w, "# HELP handoff_media_down_rtt_max_seconds The longest round trip a subscriber's reports show.\n# TYPE handoff_media_down_rtt_max_seconds gauge\nhandoff_media_down_rtt_max_seconds %g\n", q.MaxRTT)
	fmt.Fprintf(w, "# HELP handoff_media_down_video_streams Video streams sent to subscribers, by the camera layer they carry (paused: to keep the sound).\n# TYPE handoff_media_down_video_streams gauge\n")
	for i, name := range layerNames {
		fmt.Fprintf(w, "handoff_media_down_video_streams{layer=%q} %d\n", name, q.VideoByLayer[i])
	}
	fmt.Fprintf(w, "handoff_media_down_video_streams{layer=\"paused\"} %d\n", q.VideoPaused)
	fmt.Fprintf(w, "# HELP handoff_media_subscriber_estimate_bps Subscribers' downlink estimates (congestion control), in bit/s.\n# TYPE handoff_media_subscriber_estimate_bps histogram\n")
	sum := 0
	for _, e := range q.Estimates {
		sum += e
	}
	for _, le := range estimateBuckets {
		n := 0
		for _, e := range q.Estimates {
			if e <= le {
				n++
			}
		}
		fmt.Fprintf(w, "handoff_media_subscriber_estimate_bps_bucket{le=\"%d\"} %d\n", le, n)
	}
	fmt.Fprintf(w, "handoff_media_subscriber_estimate_bps_bucket{le=\"+Inf\"} %d\nhandoff_media_subscriber_estimate_bps_sum %d\nhandoff_media_subscriber_estimate_bps_count %d\n", len(q.Estimates), sum, len(q.Estimates))
}
