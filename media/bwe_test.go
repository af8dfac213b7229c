package media_test

import (
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/internal/testkit/labnode"
	"github.com/handoff-telehealth/handoff/internal/testkit/mediatest"
	"github.com/handoff-telehealth/handoff/internal/testkit/netlab"
	"github.com/handoff-telehealth/handoff/media"
)

// These tests put a patient on a weak link, made in the kernel: the
// router's token bucket on the patient's downlink (netlab.LimitDownlink),
// behind a delay line where the link is long (netlab.DelayDownlink).
// Both sides send their camera as three layers and report what arrives as
// browsers do (TWCC), so what the node sends the patient follows the
// node's estimate of that link.

// simulcastCall is a doctor and a patient in a call, each on its own link
// to the media node, both sending simulcast.
func simulcastCall(t testing.TB) (lab *netlab.Lab, patientNS string, doctor, patient *labnode.Peer) {
	t.Helper()
	lab = netlab.New(t)
	mediaNS := lab.Host("media", "198.18.1")
	doctorNS := lab.Host("doctor", "198.18.2")
	patientNS = lab.Host("patient", "198.18.3")
	m := labnode.StartMedia(t, lab, mediaNS, mediaPublic, labnode.MediaConfig{Network: media.Network{UDPPort: udpPort}, Call: callID, Members: members()})
	opts := mediatest.Options{Simulcast: true, Feedback: true}
	doctor, patient = call(t, lab, m, doctorNS, patientNS, opts, opts)
	bothWays(t, doctor, patient)
	return lab, patientNS, doctor, patient
}

// onLayer waits (at most within) for the patient to receive the doctor's
// camera on one of the layers.
func onLayer(t testing.TB, p *labnode.Peer, within time.Duration, layers ...string) (labnode.Stats, bool) {
	t.Helper()
	return p.Until(t, within, func(st labnode.Stats) bool {
		for _, l := range layers {
			if st.Layer["D"] == l && !st.VideoPaused {
				return true
			}
		}
		return false
	})
}

// watch reads the peer's stats for d and returns the last, and the layers
// its video came on meanwhile.
func watch(t *testing.T, p *labnode.Peer, d time.Duration) (labnode.Stats, map[string]bool) {
	t.Helper()
	seen := map[string]bool{}
	var st labnode.Stats
	for end := time.Now().Add(d); time.Now().Before(end); {
		st = p.Latest(t, 5*time.Second)
		seen[st.Layer["D"]] = true
	}
	return st, seen
}

// A patient whose downlink falls to 300 kbit/s with 80 ms of delay: the
// doctor's camera comes on a lower layer within 5 s, and the sound goes on
// without a gap a listener would hear (over 200 ms) for the next 30 s.
func TestAWeakDownlinkGetsALowerLayerAndKeepsTheSound(t *testing.T) {
	lab, patientNS, _, patient := simulcastCall(t)
	st, ok := onLayer(t, patient, 20*time.Second, "f")
	require.True(t, ok, "on an open link the patient climbs to the full layer: %+v", st)

	lab.DelayDownlink(patientNS, 80)
	lab.LimitDownlink(patientNS, 300, 100)
	patient.Send("resetgaps")
	limited := time.Now()
	st, ok = onLayer(t, patient, 5*time.Second, "h", "q")
	require.True(t, ok, "a lower layer within 5 s of the limit: %+v", st)
	t.Logf("lower layer %.1f s after the limit", time.Since(limited).Seconds())

	st, _ = watch(t, patient, 30*time.Second-time.Since(limited))
	require.LessOrEqual(t, st.MaxAudioGapMs["D"], 200.0, "no audio gap over 200 ms: %+v", st)
	require.NotEqual(t, "f", st.Layer["D"], "still below the full layer: %+v", st)
	require.False(t, st.VideoPaused, "300 kbit/s carries the quarter layer and the sound: %+v", st)
	t.Logf("after 30 s at 300 kbit/s: layer %s, longest audio gap %.0f ms, layer packets %v", st.Layer["D"], st.MaxAudioGapMs["D"], st.LayerPackets)
}

// A downlink of 60 kbit/s carries the sound and no video: the node pauses
// the video (the page says so), the sound goes on; when the link comes
// back so does the video.
func TestAStarvedDownlinkPausesVideoAndKeepsTheSound(t *testing.T) {
	lab, patientNS, _, patient := simulcastCall(t)
	lab.LimitDownlink(patientNS, 60, 100)
	patient.Send("resetgaps")
	limited := time.Now()
	st, ok := patient.Until(t, 15*time.Second, func(st labnode.Stats) bool { return st.VideoPaused })
	require.True(t, ok, "video paused on a 60 kbit/s link: %+v", st)
	t.Logf("video paused %.1f s after the limit", time.Since(limited).Seconds())

	// Paused: audio keeps arriving, steadily.
	patient.Send("resetgaps")
	before := patient.Latest(t, time.Second)
	st, _ = watch(t, patient, 15*time.Second)
	require.True(t, st.VideoPaused, "still paused: %+v", st)
	heard := st.Received["D/audio"] - before.Received["D/audio"]
	require.Greater(t, heard, 600, "about 50 audio packets a second keep arriving (%d in 15 s)", heard)
	require.LessOrEqual(t, st.MaxAudioGapMs["D"], 200.0, "no audio gap over 200 ms while paused: %+v", st)
	t.Logf("paused: %d audio packets in 15 s, longest gap %.0f ms", heard, st.MaxAudioGapMs["D"])
	t.Log(lab.DownlinkQueue(patientNS))

	lab.UnlimitDownlink(patientNS)
	lifted, video := time.Now(), st.Received["D/video"]
	// A probe that failed just before the lift waits at most probeMaxWait
	// (4 s) for the next, which pads 0.8 s and settles 0.3 s; then a
	// keyframe: 6–7 s at worst.
	st, ok = patient.Until(t, 10*time.Second, func(st labnode.Stats) bool { return !st.VideoPaused && st.Received["D/video"] > video+50 })
	require.True(t, ok, "video back within 10 s of the link recovering: %+v", st)
	t.Logf("video back %.1f s after the limit was lifted", time.Since(lifted).Seconds())
}

// A group of four where one member's downlink is weak: that member gets
// lower layers, and the other three keep everyone's top layer (what one
// member's link carries is no business of the others').
func TestOneWeakMemberDoesNotLowerTheGroup(t *testing.T) {
	lab := netlab.New(t)
	mediaNS := lab.Host("media", "198.18.1")
	tags := []byte{'D', 'B', 'C', 'P'}
	ids := []string{"user:doctor", "user:nurse", "user:interpreter", "visit:patient"}
	m := labnode.StartMedia(t, lab, mediaNS, mediaPublic, labnode.MediaConfig{Network: media.Network{UDPPort: udpPort}, Call: callID, Members: ids})
	var nss []string
	var peers []*labnode.Peer
	for i, tag := range tags {
		ns := lab.Host("m"+string(tag), "198.18."+strconv.Itoa(2+i))
		var from []byte
		for _, o := range tags {
			if o != tag {
				from = append(from, o)
			}
		}
		nss = append(nss, ns)
		peers = append(peers, labnode.StartPeer(t, lab, ns, labnode.PeerConfig{URL: m.URL, ID: ids[i], Call: callID, Tag: tag, From: from,
			Options: mediatest.Options{Simulcast: true, Feedback: true}}))
	}
	weak := peers[3]
	lab.LimitDownlink(nss[3], 700, 100)

	topFromAll := func(self byte) func(labnode.Stats) bool {
		return func(st labnode.Stats) bool {
			for _, o := range tags {
				if o != self && st.Layer[string([]byte{o})] != "f" {
					return false
				}
			}
			return true
		}
	}
	for i, p := range peers[:3] {
		st, ok := p.Until(t, 40*time.Second, topFromAll(tags[i]))
		require.True(t, ok, "%s receives every camera's full layer: %+v", p.ID, st)
	}
	// Meanwhile the weak member: video from all three, none of it full.
	st, _ := watch(t, weak, 5*time.Second)
	for _, o := range []string{"D", "B", "C"} {
		require.NotEqual(t, "f", st.Layer[o], "the weak member gets a lower layer of %s: %+v", o, st)
		require.LessOrEqual(t, st.MaxAudioGapMs[o], 200.0, "and hears %s without gaps: %+v", o, st)
	}
	// And the three still have the top layers.
	for i, p := range peers[:3] {
		st := p.Latest(t, 5*time.Second)
		require.True(t, topFromAll(tags[i])(st), "%s still receives every full layer: %+v", p.ID, st)
	}
	t.Logf("weak member's layers %v, packets %v", st.Layer, st.LayerPackets)
}

// 5 % of what the patient receives is lost at random: the sound goes on
// (NACKs recover what they can; a listener hears no gap over 200 ms), and
// the video keeps playing.
func TestRandomLossKeepsSoundAndVideo(t *testing.T) {
	lab, patientNS, _, patient := simulcastCall(t)
	lab.LoseDownlink(patientNS, 5)
	patient.Send("resetgaps")
	before := patient.Latest(t, time.Second)
	st, seen := watch(t, patient, 20*time.Second)
	require.LessOrEqual(t, st.MaxAudioGapMs["D"], 200.0, "no audio gap over 200 ms: %+v", st)
	video := st.Received["D/video"] - before.Received["D/video"]
	// Every layer sends at least 50 video packets a second (the half and
	// quarter one each, the full two): with 5 % lost, a lower layer brings
	// ≈950 in 20 s. A fifth below the lowest layer's rate is video that
	// stopped or stalled, not loss.
	require.Greater(t, video, 20*50*8/10, "video keeps arriving (%d packets in 20 s): %+v", video, st)
	require.False(t, st.VideoPaused, "5 %% loss does not pause the video: %+v", st)
	t.Logf("5 %% loss: layers seen %v, longest audio gap %.0f ms, %d video packets in 20 s", seen, st.MaxAudioGapMs["D"], video)
}

// BenchmarkTimeToAdapt: how long a subscriber's video takes to follow its
// link. One call, both sides simulcast; each run limits the patient's
// downlink to 300 kbit/s (timing until the doctor's camera comes on a lower
// layer), then lifts the limit (timing until it is back on the full
// layer). Stats lines come every 100 ms: that is the resolution.
// HANDOFF_BENCH=short: 5 runs instead of 20.
func BenchmarkTimeToAdapt(b *testing.B) {
	runs := 20
	if os.Getenv("HANDOFF_BENCH") == "short" {
		runs = 5
	}
	lab, patientNS, _, patient := simulcastCall(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var adapt, recover []time.Duration
		_, ok := onLayer(b, patient, 30*time.Second, "f")
		require.True(b, ok, "the full layer first")
		for r := 0; r < runs; r++ {
			lab.LimitDownlink(patientNS, 300, 100)
			limited := time.Now()
			st, ok := onLayer(b, patient, 10*time.Second, "h", "q")
			require.True(b, ok, "run %d: a lower layer: %+v", r, st)
			adapt = append(adapt, time.Since(limited))
			time.Sleep(3 * time.Second)
			lab.UnlimitDownlink(patientNS)
			lifted := time.Now()
			st, ok = onLayer(b, patient, 60*time.Second, "f")
			require.True(b, ok, "run %d: back on the full layer: %+v", r, st)
			recover = append(recover, time.Since(lifted))
			b.Logf("run %d: lower layer after %.1f s, full again %.1f s after the lift", r+1, adapt[r].Seconds(), recover[r].Seconds())
		}
		p := func(ds []time.Duration, q float64) float64 {
			s := slices.Clone(ds)
			slices.Sort(s)
			return s[min(len(s)-1, int(q*float64(len(s))))].Seconds()
		}
		b.Logf("%d runs: limit → lower layer p50 %.1f s, p99 %.1f s; lift → full layer p50 %.1f s, p99 %.1f s",
			runs, p(adapt, 0.5), p(adapt, 0.99), p(recover, 0.5), p(recover, 0.99))
		b.ReportMetric(p(adapt, 0.5), "adapt-p50-s")
		b.ReportMetric(p(adapt, 0.99), "adapt-p99-s")
		b.ReportMetric(p(recover, 0.5), "recover-p50-s")
		b.ReportMetric(p(recover, 0.99), "recover-p99-s")
	}
}

// The doctor shares a screen; the patient's downlink carries the sound and
// the screen but not the camera as well: the screen goes on, the camera
// pauses (the screen is what the call is looking at).
func TestAShortLinkKeepsTheSharedScreenBeforeTheCamera(t *testing.T) {
	lab := netlab.New(t)
	mediaNS := lab.Host("media", "198.18.1")
	doctorNS := lab.Host("doctor", "198.18.2")
	patientNS := lab.Host("patient", "198.18.3")
	m := labnode.StartMedia(t, lab, mediaNS, mediaPublic, labnode.MediaConfig{Network: media.Network{UDPPort: udpPort}, Call: callID, Members: members()})
	doctor, patient := call(t, lab, m, doctorNS, patientNS, mediatest.Options{Simulcast: true, Feedback: true, Screen: true}, mediatest.Options{Simulcast: true, Feedback: true})
	bothWays(t, doctor, patient)
	st, ok := patient.Until(t, 10*time.Second, func(st labnode.Stats) bool { return st.Received["D/screen"] > 50 })
	require.True(t, ok, "the patient receives the doctor's screen: %+v", st)

	// 240 kbit/s: the sound (≈26 kbit/s on the wire) and the screen (≈124)
	// fit, the camera's lowest layer (≈124) beside them does not, by a
	// seventh (at 260 kbit/s it was over by a twentieth, inside the
	// allocator's tenth of hysteresis, and the camera came and went).
	lab.LimitDownlink(patientNS, 240, 100)
	patient.Send("resetgaps")
	time.Sleep(8 * time.Second) // the estimate settles
	before := patient.Latest(t, time.Second)
	st, _ = watch(t, patient, 10*time.Second)
	screen := st.Received["D/screen"] - before.Received["D/screen"]
	camera := st.Received["D/video"] - before.Received["D/video"]
	t.Logf("on 240 kbit/s over 10 s: %d screen packets, %d camera packets, longest audio gap %.0f ms", screen, camera, st.MaxAudioGapMs["D"])
	// (The estimate swings on a link this full, and with it the screen: it
	// arrives 50–90 % of the time here. On an idle machine the camera gets
	// 0–12 packets; in a CI run on a busy machine the estimate stayed high
	// long enough for 124 camera packets beside 282 of the screen. A node
	// that did not put the screen first would share the link about evenly
	// between the two, or favour the camera: either fails the bound.)
	require.Greater(t, screen, 150, "the screen keeps coming (50 packets a second sent)")
	require.Less(t, camera, screen/2, "the camera gives way to the screen")
	require.LessOrEqual(t, st.MaxAudioGapMs["D"], 200.0, "and the sound goes on: %+v", st)
}
