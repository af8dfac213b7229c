package media

import (
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/webrtc/v4"
)

// Each subscriber's downlink has its own estimate: the node sends it
// transport-wide sequence numbers (TWCC), the subscriber's browser reports
// when each packet arrived, and pion's Google Congestion Control turns that
// into a target bit rate (gcc.SendSideBWE, one per PeerConnection). The
// allocator spends the estimate audio first: every audio stream whole, then
// for each camera the highest layer that fits, and if not even the lowest
// layers fit, the subscriber's video pauses.
//
// pion's estimator never rises above 1.5× what it sees arrive and grows at
// most 8 % a second, so a subscriber whose video was cut back (or paused)
// would stay cut back for good. The allocator therefore probes: it pads the
// subscriber's stream up to the rate the next step needs for probeLength,
// and if the estimator saw no congestion meanwhile (no drop of its target,
// little loss), the probed rate counts as available until the link next
// shows congestion. A probe that fails overloaded the link itself: what
// the allocator spent before it still counts as carried (the estimator's
// fall is the probe's doing) until the link shows congestion outside one.
const (
	// initialEstimate is what a new subscriber is assumed to carry before
	// any feedback: enough for audio and a low camera layer on any link a
	// call is worth trying on. Higher layers follow probes.
	initialEstimate = 300_000
	minEstimate     = 30_000
	maxEstimate     = 10_000_000

	allocInterval = 250 * time.Millisecond
	// probeLength is how long a probe pads; the estimator reacts to a
	// queue within a few feedback reports (each 50–100 ms).
	probeLength = 800 * time.Millisecond
	// probeRamp: a probe climbs to its rate over this much of probeLength
	// (see probing).
	probeRamp = 600 * time.Millisecond
	// probeSettle: a drop of the estimate this long after a probe still
	// counts against it (feedback of the probe's last packets).
	probeSettle = 300 * time.Millisecond
	// A failed probe doubles the wait before the next, from probeFirstWait
	// up to probeMaxWait; a success resets it. The cap bounds how long a
	// link that recovered waits for its video (a probe on a link that has
	// not costs it probeLength of overload every probeMaxWait).
	probeFirstWait = 2 * time.Second
	probeMaxWait   = 4 * time.Second
	// probeAfterSuccess: the wait before the next step's probe after one
	// succeeded (the allocator spends the new rate meanwhile).
	probeAfterSuccess = 500 * time.Millisecond
	// probeMaxLoss: a probe during which the subscriber reported more loss
	// than this (where GCC itself starts to back off) failed, even if the
	// estimate did not drop (an estimate at its floor cannot drop).
	probeMaxLoss = 0.1
	// probeMaxStep: a probe pads up to at most this percentage of the rate
	// the link carries now.
	probeMaxStep = 150
	// probeAftermath: loss reported this long after a failed probe settled
	// is still the probe's (its last packets' feedback, GCC's average).
	probeAftermath = 2 * time.Second
	// upHold: after a drop of the estimate, no layer goes up for this long.
	upHold = 3 * time.Second
	// audioFloor is the least an audio stream is counted as (Opus with
	// in-band FEC at speech rates), before its rate is measured.
	audioFloor = 40_000
	// dropFactor: a new target under this share of the previous is a drop
	// (congestion), not the estimator's noise.
	dropFactor = 0.9
)

// byConnection hands what an interceptor builds for a new PeerConnection
// (its estimator, its pacer) to the PeerConnection's session: interceptors
// are built inside NewPeerConnection, keyed by the PeerConnection's id.
type byConnection[T any] struct {
	mu      sync.Mutex
	pending map[string]T
}

func (b *byConnection[T]) add(id string, v T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending == nil {
		b.pending = map[string]T{}
	}
	b.pending[id] = v
}

func (b *byConnection[T]) take(id string) T {
	b.mu.Lock()
	defer b.mu.Unlock()
	v := b.pending[id]
	delete(b.pending, id)
	return v
}

// estimators carries each new PeerConnection's downlink estimator.
type estimators = byConnection[cc.BandwidthEstimator]

// downlink is one subscriber's estimate, probing state and pacer.
type downlink struct {
	est  cc.BandwidthEstimator
	pace *pacer
	// name is its participant's, for the trace: a call's downlinks trace
	// side by side.
	name string

	mu       sync.Mutex
	last     int       // the estimator's last target
	lastDrop time.Time // when its target last dropped, a probe's doing aside
	// probed is a rate a probe showed the link carries, valid until the
	// link next shows congestion.
	probed int
	// carried is what the allocator spent before a probe that failed: the
	// link carried it until the probe overloaded it, so the estimator's
	// fall during the probe (its own loss, its own queue) is not a reason
	// to go below it. Valid until the link shows congestion outside a probe.
	carried    int
	probeEnd   time.Time
	probeRate  int
	preProbe   int       // what the allocator spent when the probe started
	probeFrom  int       // the estimate when the probe started
	probeDrop  bool      // the estimate dropped while the probe was in flight or settling
	probeLoss  float64   // the worst loss reported since the probe started
	probeQuiet time.Time // loss reported before this is a failed probe's
	// congestedOnce: the link has shown congestion (a drop of the estimate,
	// a failed probe, loss), so the estimate is a measurement.
	congestedOnce bool
	// spent is what the allocator spent at its last tick, audio counted
	// as it budgets it.
	spent     int
	probeWait time.Duration
	nextProbe time.Time
}

func newDownlink(name string, est cc.BandwidthEstimator, pace *pacer) *downlink {
	dl := &downlink{name: name, est: est, pace: pace, last: initialEstimate, probeWait: probeFirstWait, nextProbe: time.Now().Add(time.Second)}
	if est != nil {
		est.OnTargetBitrateChange(dl.targetChanged)
	}
	return dl
}

func (dl *downlink) targetChanged(bitrate int) {
	// pion calls this on a goroutine of its own: the estimator's lock is
	// free, and its stats are those of the update that set bitrate.
	backsOff, lossy := true, false
	if dl.est != nil {
		st := dl.est.GetStats()
		backsOff = backingOff(st)
		loss, _ := st["averageLoss"].(float64)
		lossy = loss > probeMaxLoss
		dl.trace("target %d: loss %.3f usage %v state %v", bitrate, st["averageLoss"], st["usage"], st["state"])
	}
	dl.mu.Lock()
	defer dl.mu.Unlock()
	dl.trace("target %d (was %d)", bitrate, dl.last)
	switch {
	case !backsOff:
		// GCC also lowers its target while it increases: never above 1.5×
		// what arrives. When a probe ends, or video resumes and waits for
		// its keyframe, what arrives falls to the sound alone and the
		// target with it; that says nothing about the link (counted as a
		// drop, it paused video that had just resumed on an open link).
	case dl.probeRate != 0:
		// A probe is judged by where the estimate stands against where it
		// stood when the probe began: one report's dip of a tenth is GCC's
		// noise (on an open link, with no loss, it failed resume probes
		// one after another), an overloaded link's fall goes further.
		if float64(bitrate) < dropFactor*float64(dl.probeFrom) {
			dl.congestedOnce, dl.probeDrop = true, true
		}
	case float64(bitrate) < dropFactor*float64(dl.last) && 2*dl.spent < dl.last && !lossy:
		// A trickle (sound and a tiny video, far under the estimate)
		// that GCC saw overuse on, without loss: GCC falls to 0.85× what
		// arrives, often its floor, under the sound's own budget, and the
		// video would pause. One such report on a link that carried far more says
		// little about it (a transfer's receiving provider waited ≈4 s
		// for the patient's picture, 5–25 runs in 100). What was spent
		// got through: twice it (a keyframe's room, still under the
		// estimate it fell from) counts as carried until the link shows
		// loss (observeLoss) or a drop while it is used. No layer goes up
		// for upHold.
		dl.trace("drop on a trickle: %d spent, keeps it", dl.spent)
		dl.lastDrop = time.Now()
		dl.carried = max(dl.carried, min(dl.last, 2*dl.spent))
	case float64(bitrate) < dropFactor*float64(dl.last):
		dl.droppedLocked(time.Now())
	}
	dl.last = bitrate
}

// backingOff: the estimator's last update lowered its target for
// congestion: its delay detector is in the decrease state (the link's
// queue grew), or the loss it averages is where its loss controller backs
// off.
func backingOff(st map[string]any) bool {
	state, _ := st["state"].(string)
	loss, _ := st["averageLoss"].(float64)
	return state == "decrease" || loss > probeMaxLoss
}

// droppedLocked notes congestion outside a probe (targetChanged judges a
// drop during one): the link has become worse, and neither a probe's rate
// nor a failed probe's carried rate holds.
func (dl *downlink) droppedLocked(now time.Time) {
	dl.congestedOnce = true
	dl.lastDrop = now
	dl.probed, dl.carried = 0, 0
}

// available is what the allocator may spend on this subscriber now.
func (dl *downlink) available() int {
	target := initialEstimate
	if dl.est != nil {
		target = dl.est.GetTargetBitrate()
	}
	dl.mu.Lock()
	defer dl.mu.Unlock()
	rate := max(target, dl.probed, dl.carried)
	if dl.probeRate != 0 {
		rate = max(rate, dl.preProbe)
	}
	return rate
}

// probing reports the rate a probe in flight pads up to now (0: none). A
// probe ramps from what the allocator spent to its rate over its first
// probeRamp, then holds: on a link that cannot carry the rate, the queue
// starts growing where the ramp crosses the link's rate and grows slowly
// at first, so the estimator's delay detector sees it (and the probe is cut
// short) before the queue overflows and drops the sound with the padding.
// A probe that jumped to its rate on a 60 kbit/s link overflowed it within
// 200 ms, before any feedback could tell.
func (dl *downlink) probing(now time.Time) int {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	if !now.Before(dl.probeEnd) {
		return 0
	}
	elapsed := now.Sub(dl.probeEnd.Add(-probeLength))
	if elapsed >= probeRamp || dl.probeRate <= dl.preProbe {
		return dl.probeRate
	}
	return dl.preProbe + int(float64(dl.probeRate-dl.preProbe)*float64(elapsed)/float64(probeRamp))
}

// settleProbe ends a probe whose time is up: it succeeded if the estimate
// did not drop from its start until probeSettle after its end.
func (dl *downlink) settleProbe(now time.Time, m *Metrics) {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	if dl.probeRate == 0 || now.Before(dl.probeEnd.Add(probeSettle)) {
		return
	}
	if dl.probeDrop || dl.probeLoss > probeMaxLoss {
		dl.trace("probe %d failed: drop=%v loss=%.3f", dl.probeRate, dl.probeDrop, dl.probeLoss)
		m.ProbesFailed.Add(1)
		dl.carried = max(dl.carried, dl.preProbe)
		dl.probeQuiet = now.Add(probeAftermath)
		dl.probeWait = min(2*dl.probeWait, probeMaxWait)
		dl.nextProbe = now.Add(dl.probeWait)
	} else {
		dl.trace("probe %d ok", dl.probeRate)
		m.ProbesSucceeded.Add(1)
		dl.probed = max(dl.probed, dl.probeRate)
		dl.probeWait = probeFirstWait
		// The link took this step: ask for the next one soon (a group
		// call's cameras climb a step each).
		dl.nextProbe = now.Add(probeAfterSuccess)
	}
	dl.probeRate = 0
}

// observeLoss follows the loss the subscriber reports: during a probe it
// is the probe's verdict; outside one, loss beyond what GCC itself backs
// off at is congestion (an estimate at its floor cannot drop further, and
// a failed probe's carried rate must not outlive a link that got worse).
func (dl *downlink) observeLoss(now time.Time) {
	if dl.est == nil {
		return
	}
	loss, _ := dl.est.GetStats()["averageLoss"].(float64)
	dl.mu.Lock()
	defer dl.mu.Unlock()
	switch {
	case dl.probeRate != 0:
		dl.probeLoss = max(dl.probeLoss, loss)
	case loss > probeMaxLoss && now.After(dl.probeQuiet):
		// Neither rate holds any longer; the estimator's own fall (GCC
		// backs off at this loss) says by how much the link got worse.
		dl.probed, dl.carried = 0, 0
		dl.congestedOnce = true
	}
}

// cutShortIfOverloaded fails a probe, in flight or settling, the moment
// the estimator sees the link's queue grow (its delay detector's
// overuse), and ends one in flight then rather than at probeLength: a
// probe that overloads a starved link drops what shares the link with it,
// the sound included, for as long as it pads (a resume probe on a 60
// kbit/s link lost two packets in three for 800 ms and left 210 ms holes
// in the sound). A ramped probe can end before the estimate falls, so the
// overuse itself is the verdict. Reports whether it ended one in flight.
func (dl *downlink) cutShortIfOverloaded(now time.Time) bool {
	if dl.est == nil {
		return false
	}
	dl.mu.Lock()
	watching := dl.probeRate != 0 && !dl.probeDrop
	dl.mu.Unlock()
	if !watching {
		return false
	}
	if usage, _ := dl.est.GetStats()["usage"].(string); usage != "overuse" {
		return false
	}
	dl.mu.Lock()
	defer dl.mu.Unlock()
	if dl.probeRate == 0 {
		return false
	}
	dl.trace("probe %d failed early: overuse", dl.probeRate)
	dl.probeDrop, dl.congestedOnce = true, true
	if now.Before(dl.probeEnd) {
		dl.probeEnd = now
		return true
	}
	return false
}

// startProbe pads the subscriber's streams up to rate for probeLength, if
// no probe is due to wait and the estimate has been steady; spending is
// what the allocator spends now.
func (dl *downlink) startProbe(now time.Time, rate, spending int) bool {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	if dl.probeRate != 0 || now.Before(dl.nextProbe) || now.Sub(dl.lastDrop) < upHold {
		return false
	}
	dl.trace("probe start %d", rate)
	dl.probeEnd, dl.probeRate, dl.probeLoss, dl.probeDrop, dl.probeFrom = now.Add(probeLength), rate, 0, false, dl.last
	dl.preProbe = spending
	return true
}

// noteSpent records what the allocator spends on the subscriber now.
func (dl *downlink) noteSpent(spent int) {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	dl.spent = spent
}

// congested: the link has shown congestion at least once, so the estimate
// is a measurement, not the initial guess.
func (dl *downlink) congested() bool {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	return dl.congestedOnce
}

// recentlyDropped: the estimate dropped within upHold (no layer goes up).
func (dl *downlink) recentlyDropped(now time.Time) bool {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	return now.Sub(dl.lastDrop) < upHold
}

// allocate runs every allocInterval until the node closes: it measures the
// publishers' layer rates, then chooses each subscriber's layers.
func (s *SFU) allocate(done <-chan struct{}) {
	tick := time.NewTicker(allocInterval)
	defer tick.Stop()
	pad := time.NewTicker(padInterval)
	defer pad.Stop()
	last := time.Now()
	for {
		select {
		case <-done:
			return
		case now := <-pad.C:
			s.padProbes(now)
		case now := <-tick.C:
			s.mu.Lock()
			s.measureLocked(now.Sub(last))
			last = now
			for _, sess := range s.sessions {
				s.allocateLocked(sess, now)
			}
			s.mu.Unlock()
		}
	}
}

// measureLocked turns each layer's byte count into its rate over the last
// interval (smoothed: keyframes come in bursts).
func (s *SFU) measureLocked(dt time.Duration) {
	if dt <= 0 {
		return
	}
	now, stopped := time.Now(), false
	for _, sess := range s.sessions {
		for _, t := range sess.published {
			for i := range maxLayers {
				l := t.layer(i)
				if l == nil {
					continue
				}
				b := l.bytes.Load()
				inst := int64(float64(b-l.lastBytes) * 8 / dt.Seconds())
				if b != l.lastBytes || l.lastBytesAt.IsZero() {
					l.lastBytesAt = now
				}
				l.lastBytes = b
				// A screen whose sharing stopped leaves the others' pages.
				if t.screen && now.Sub(l.lastBytesAt) > screenIdleAfter && t.idle.CompareAndSwap(false, true) {
					stopped = true
				}
				prev := l.rate.Load()
				switch {
				case inst == 0:
					l.rate.Store(0) // it stopped (the publisher's own link, or its camera)
				case prev == 0:
					l.rate.Store(inst)
				default:
					l.rate.Store((3*prev + inst) / 4)
				}
			}
		}
	}
	if stopped {
		s.reconcileLocked()
	}
}

// screenIdleAfter: a shared screen that sent nothing this long is no longer
// shared (a still screen still sends a frame a second or so).
const screenIdleAfter = 3 * time.Second

// allocateLocked chooses one subscriber's layers from its estimate: audio
// first, then the lowest layer of every camera, then higher layers in turn
// while they fit. Layers go down at once and up only when the estimate has
// been steady; when a higher step does not fit, a probe asks the link.
// Callers hold s.mu.
func (s *SFU) allocateLocked(sess *session, now time.Time) {
	dl := sess.downlink
	if dl == nil {
		return
	}
	dl.observeLoss(now)
	dl.settleProbe(now, &s.Metrics)
	available := dl.available()
	budget := available
	if dl.pace != nil {
		// Never slower than what the subscriber's layers send now (a link
		// not yet measured is sent what it is sent) or a probe pads to.
		dl.pace.setRate(int(pacingFactor * float64(max(available, dl.probing(now), sendingLocked(sess)))))
	}
	var videos []*downTrack
	for t, out := range sess.senders {
		if t.kind == webrtc.RTPCodecTypeAudio {
			rate := 0
			if l := t.layer(0); l != nil {
				rate = int(l.rate.Load())
			}
			budget -= max(rate, audioFloor)
			continue
		}
		if len(t.activeLayers()) > 0 {
			videos = append(videos, out.down)
		}
	}
	audio := available - budget
	if len(videos) == 0 {
		dl.noteSpent(audio)
		return
	}
	// A steady order: the same camera gets the spare first every time.
	sort.Slice(videos, func(i, j int) bool { return videos[i].streamID < videos[j].streamID })
	// A shared screen comes before the cameras: it is what the call is
	// looking at. It has one layer; the cameras share what it leaves.
	var screens, cameras []*downTrack
	screenCost := 0
	for _, d := range videos {
		if d.source.screen {
			screens = append(screens, d)
			screenCost += int(d.source.activeLayers()[0].rate.Load())
		} else {
			cameras = append(cameras, d)
		}
	}
	// Paused video resumes only with a tenth to spare, and playing video
	// pauses only when the cheapest layers are over the budget by more than
	// a tenth: a layer's measured rate moves that much from tick to tick,
	// and at the edge it would pause and resume the video every tick (and a
	// link that carries the lowest layer would lose its picture to noise).
	spend := budget
	if sess.videoPaused {
		spend = budget * 10 / 11
	}
	choice, fits := chooseLayers(cameras, spend-screenCost)
	if !fits && !sess.videoPaused {
		_, fits = chooseLayers(cameras, budget*11/10-screenCost) // the lowest layers, kept
	}
	screensFit := screenCost <= spend
	steady := !dl.recentlyDropped(now)
	// Video pauses only on evidence: a link that has shown congestion. The
	// estimate a subscriber starts with is a guess, and a camera sent as one
	// layer (no simulcast) would otherwise be paused for every new
	// subscriber until a probe proved what its link was never short of.
	if !dl.congested() {
		fits, screensFit = true, true
	}
	// All video pauses (and the page says so) when not even the screen, or
	// with no screen the cameras' lowest layers, fit beside the sound; with
	// a screen that fits, only the cameras pause.
	if !screensFit || (len(screens) == 0 && !fits) {
		s.setVideoPausedLocked(sess, true)
	} else if sess.videoPaused && steady {
		s.setVideoPausedLocked(sess, false)
	}
	if !sess.videoPaused && len(screens) > 0 {
		if pause := !fits; pause != sess.camerasPaused && (pause || steady) {
			sess.camerasPaused = pause
			for _, d := range cameras {
				d.setPaused(pause)
			}
		}
	}
	if fits {
		for i, d := range cameras {
			_, target := d.layers()
			if choice[i] < target || (choice[i] > target && steady) {
				d.setTarget(choice[i])
			}
		}
	}
	if traceOn {
		var cur, tgt []int
		var rates []int64 // each camera's layers, lowest first
		for _, d := range cameras {
			c, t := d.layers()
			cur, tgt = append(cur, c), append(tgt, t)
			for i := range maxLayers {
				if l := d.source.layer(i); l != nil {
					rates = append(rates, l.rate.Load())
				}
			}
		}
		est := 0
		if dl.est != nil {
			est = dl.est.GetTargetBitrate()
		}
		dl.mu.Lock()
		dl.trace("alloc est=%d carried=%d probed=%d avail=%d budget=%d choice=%v fits=%v cur=%v tgt=%v steady=%v paused=%v probe=%d loss=%.3f rates=%v screens=%d spend=%d",
			est, dl.carried, dl.probed, available, budget, choice, fits, cur, tgt, steady, sess.videoPaused, dl.probeRate, dl.probeLoss, rates, screenCost, spend)
		dl.mu.Unlock()
	}
	spent := audio + spending(sess, cameras, choice, fits, screenCost, screensFit)
	dl.noteSpent(spent)
	s.tellLinkLocked(sess, cameras)
	// Is there a step up that does not fit? Then ask the link for it.
	next := nextStep(cameras, choice, fits && screensFit)
	if next > 0 || !screensFit {
		next += screenCost
	}
	if next > 0 && next > spend {
		if sess.videoPaused {
			next = next * 11 / 10 // what resuming needs (see spend)
		}
		// A probe for a bigger layer asks at most half again what the link
		// carries now: a step bigger than that (the quarter size to the full
		// one) is climbed in two probes, and a link that cannot take it is
		// overloaded by a half, not twice over (in Chromium a 300 kbit/s
		// link lost half of a probe for the full size, and the sound with
		// it). The probe to resume paused video asks for all it needs: it is
		// small, and the picture is what the patient is missing.
		rate := next + audio + next/10
		if !sess.videoPaused {
			rate = min(rate, available*probeMaxStep/100)
		}
		if dl.startProbe(now, rate, spent) {
			s.Metrics.Probes.Add(1)
		}
	}
}

// spending is the video rate an allocation sends: the screen if it fits,
// the cameras' chosen layers if they fit and are not paused.
func spending(sess *session, cameras []*downTrack, choice []int, fits bool, screenCost int, screensFit bool) int {
	if sess.videoPaused {
		return 0
	}
	total := 0
	if screensFit {
		total += screenCost
	}
	if !fits || sess.camerasPaused {
		return total
	}
	for i, d := range cameras {
		if l := d.source.layer(choice[i]); l != nil {
			total += int(l.rate.Load())
		}
	}
	return total
}

// tellLinkLocked tells the subscriber's page what the node sees of its
// downlink (for its call view's quality line) when the layer it gets or the
// estimate has changed by a fifth since it was last told.
func (s *SFU) tellLinkLocked(sess *session, videos []*downTrack) {
	layer := ""
	lowest := maxLayers
	for _, d := range videos {
		if cur, _ := d.layers(); cur >= 0 && cur < lowest {
			lowest = cur
		}
	}
	switch {
	case sess.videoPaused:
		layer = "paused"
	case lowest < maxLayers:
		layer = layerNames[lowest]
	}
	est := sess.downlink.available()
	last := sess.link
	if layer == last.Layer && float64(est) > 0.8*float64(last.Estimate) && float64(est) < 1.2*float64(last.Estimate) {
		return
	}
	sess.link = message{Type: "link", Estimate: est, Layer: layer}
	sess.send(sess.link)
}

// chooseLayers picks a layer index for each camera within budget: all at
// their lowest layer, then one step up each in turn while the steps fit.
// fits is false when not even the lowest layers fit.
func chooseLayers(videos []*downTrack, budget int) (choice []int, fits bool) {
	choice = make([]int, len(videos))
	layers := make([][]*layer, len(videos))
	spend := 0
	for i, d := range videos {
		layers[i] = d.source.activeLayers()
		choice[i] = layers[i][0].index
		spend += int(layers[i][0].rate.Load())
	}
	if spend > budget {
		return choice, false
	}
	at := make([]int, len(videos)) // position in layers[i]
	for moved := true; moved; {
		moved = false
		for i := range videos {
			if at[i]+1 >= len(layers[i]) {
				continue
			}
			step := int(layers[i][at[i]+1].rate.Load() - layers[i][at[i]].rate.Load())
			if spend+step <= budget {
				spend += step
				at[i]++
				choice[i] = layers[i][at[i]].index
				moved = true
			}
		}
	}
	return choice, true
}

// nextStep is the total video rate the next step up would need: the
// lowest layers of all when they do not fit, else the current choice with
// the cheapest single step up (0: every camera is at its top).
func nextStep(videos []*downTrack, choice []int, fits bool) int {
	total, cheapest := 0, 0
	for i, d := range videos {
		active := d.source.activeLayers()
		if !fits {
			total += int(active[0].rate.Load())
			continue
		}
		var cur int64
		for k, l := range active {
			if l.index != choice[i] {
				continue
			}
			cur = l.rate.Load()
			if k+1 < len(active) {
				if step := int(active[k+1].rate.Load() - cur); cheapest == 0 || step < cheapest {
					cheapest = step
				}
			}
		}
		total += int(cur)
	}
	if fits && cheapest == 0 {
		return 0
	}
	return total + cheapest
}

// sendingLocked is what a subscriber's streams carry now: each one's
// current layer at its measured rate, paused video aside. Callers hold s.mu.
func sendingLocked(sess *session) int {
	sending := 0
	for t, out := range sess.senders {
		cur, _ := out.down.layers()
		if l := t.layer(max(cur, 0)); l != nil && !(t.kind == webrtc.RTPCodecTypeVideo && out.down.paused.Load()) {
			sending += int(l.rate.Load())
		}
	}
	return sending
}

// padInterval is how often a probing subscriber's padding goes out.
const padInterval = 20 * time.Millisecond

// padProbes sends each probing subscriber padding up to its probe rate:
// what its streams carry now falls short of the rate by so many bytes each
// padInterval.
func (s *SFU) padProbes(now time.Time) {
	type job struct {
		pads    []*downTrack
		packets int
	}
	var jobs []job
	s.mu.Lock()
	for _, sess := range s.sessions {
		if sess.downlink == nil {
			continue
		}
		if sess.downlink.cutShortIfOverloaded(now) {
			continue
		}
		rate := sess.downlink.probing(now)
		if rate == 0 {
			continue
		}
		var pads []*downTrack
		for t, out := range sess.senders {
			if t.kind == webrtc.RTPCodecTypeVideo {
				pads = append(pads, out.down)
			}
		}
		short := (rate - sendingLocked(sess)) / 8 * int(padInterval) / int(time.Second)
		if short > 0 && len(pads) > 0 {
			jobs = append(jobs, job{pads: pads, packets: (short + len(paddingPayload) - 1) / len(paddingPayload)})
		}
	}
	s.mu.Unlock()
	for _, j := range jobs {
		for i := 0; i < j.packets; i++ {
			if j.pads[i%len(j.pads)].pad() {
				s.Metrics.PaddingPackets.Add(1)
			}
		}
	}
}

// HANDOFF_MEDIA_TRACE=1 prints the allocator's decisions to stderr (each
// estimate change, each allocation, each probe): rates and layer indexes,
// nothing about who is in the call. For following a test's link by hand
// (with HANDOFF_NETLAB_LOG=1, a lab node's stderr reaches the test log).
var traceOn = os.Getenv("HANDOFF_MEDIA_TRACE") != ""

func (dl *downlink) trace(format string, args ...any) {
	if traceOn {
		fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+dl.name+" "+format+"\n", args...)
	}
}
