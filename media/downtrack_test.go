package media

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/internal/testkit/mediatest"
)

// Whoever starts receiving a publisher's video (an admit, a second provider
// joining, the receiving call of a transfer) decodes from a keyframe: the
// first video packet they get from each publisher starts one. Their
// sequence numbers have no gap where the node held packets back.
func TestNewSubscribersStartAtAKeyframe(t *testing.T) {
	n := newNode(t)
	doctor, patient := n.connect(t, "user:lee", 'D'), n.connect(t, "visit:1", 'P')
	admit(t, n, "call-1", doctor, patient)
	doctor.ReceivesFrom(t, patient)
	patient.ReceivesFrom(t, doctor)
	time.Sleep(500 * time.Millisecond) // the publishers send delta frames for a while
	late := n.connect(t, "user:patel", 'T')
	admit(t, n, "call-1", late)
	late.ReceivesFrom(t, doctor, patient)
	for _, c := range []struct {
		p    *mediatest.Peer
		from []byte
	}{{doctor, []byte{'P', 'T'}}, {patient, []byte{'D', 'T'}}, {late, []byte{'D', 'P'}}} {
		for _, from := range c.from {
			require.Eventually(t, func() bool { _, seen := c.p.FirstVideoWasKeyframe(from); return seen }, 5*time.Second, 20*time.Millisecond)
			key, _ := c.p.FirstVideoWasKeyframe(from)
			require.True(t, key, "%s's first video from %c starts a keyframe", c.p.ID, from)
		}
		require.Zero(t, c.p.SequenceGaps(), "%s: no sequence gaps", c.p.ID)
		c.p.NoErrors(t)
	}
}

// A subscriber that floods the node with keyframe requests (100 a second)
// gets the publisher asked at most once per keyframeInterval.
func TestAPLIStormReachesThePublisherThrottled(t *testing.T) {
	n := newNode(t)
	doctor, patient := n.connect(t, "user:lee", 'D'), n.connect(t, "visit:1", 'P')
	admit(t, n, "call-1", doctor, patient)
	patient.ReceivesFrom(t, doctor)
	ssrc := videoSSRC(t, patient)
	before := doctor.PLIs.Load()
	const storm = 3 * time.Second
	end := time.Now().Add(storm)
	sent := 0
	for time.Now().Before(end) {
		require.NoError(t, patient.PC.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}))
		sent++
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	got := doctor.PLIs.Load() - before
	t.Logf("%d keyframe requests from the subscriber in %s (%d reached the node); the publisher was asked %d times", sent, storm, n.sfu.Metrics.KeyframeRequests.Load(), got)
	require.Greater(t, sent, 200)
	require.Positive(t, got, "keyframe requests still get through")
	require.LessOrEqual(t, got, int64(storm/(500*time.Millisecond))+2, "at most one per 500 ms")
}

// Audio first: a subscriber whose video is paused keeps receiving audio
// without a gap while video stops; resumed, video comes back from a
// keyframe, with no gap in its sequence numbers.
func TestPausedVideoKeepsTheAudioAndResumesAtAKeyframe(t *testing.T) {
	n := newNode(t)
	doctor, patient := n.connect(t, "user:lee", 'D'), n.connect(t, "visit:1", 'P')
	admit(t, n, "call-1", doctor, patient)
	patient.ReceivesFrom(t, doctor)

	n.sfu.SetVideoPaused(patient.ID, true)
	time.Sleep(200 * time.Millisecond)
	patient.ResetAudioGaps()
	video, audio := patient.Count('D', "video"), patient.Count('D', "audio")
	time.Sleep(time.Second)
	require.Equal(t, video, patient.Count('D', "video"), "no video while paused")
	require.Greater(t, patient.Count('D', "audio"), audio+30, "audio goes on")
	require.Less(t, patient.MaxAudioGap('D'), 200*time.Millisecond, "without a gap")
	require.Greater(t, doctor.Count('P', "video"), 0, "the other way is not paused")
	require.Eventually(t, func() bool { return hasEvent(patient, "video_paused") }, 2*time.Second, 20*time.Millisecond, "the page is told")

	keys := len(patient.KeyframesFrom('D'))
	n.sfu.SetVideoPaused(patient.ID, false)
	require.Eventually(t, func() bool { return patient.Count('D', "video") > video }, 3*time.Second, 20*time.Millisecond, "video comes back")
	require.Greater(t, len(patient.KeyframesFrom('D')), keys, "from a keyframe")
	require.Zero(t, patient.SequenceGaps(), "no sequence gap where video was held back")
	patient.NoErrors(t)
}

// hasEvent tells whether the peer's page was sent a message of type typ.
func hasEvent(p *mediatest.Peer, typ string) bool {
	for {
		select {
		case m := <-p.Events:
			if m.Type == typ {
				return true
			}
		default:
			return false
		}
	}
}

// The node classes the streams it sends by what their subscribers report:
// a subscriber reporting 25 % loss on the doctor's video makes one poor
// stream in the metrics, named by class, never by participant.
func TestSubscribersReportsShowInTheMetrics(t *testing.T) {
	n := newNode(t)
	doctor, patient := n.connect(t, "user:lee", 'D'), n.connect(t, "visit:1", 'P')
	admit(t, n, "call-1", doctor, patient)
	patient.ReceivesFrom(t, doctor)
	ssrc := videoSSRC(t, patient)
	require.NoError(t, patient.PC.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: ssrc, FractionLost: 64, Jitter: 900}}}}))
	require.Eventually(t, func() bool { return n.sfu.downQuality().Poor == 1 }, 5*time.Second, 20*time.Millisecond)
	q := n.sfu.downQuality()
	require.InDelta(t, 0.01, q.MaxJitter, 0.0001, "900 units of a 90 kHz clock")
	require.Equal(t, 3, q.Unreported, "the three other streams have no report yet")
	rec := httptest.NewRecorder()
	n.sfu.Metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	require.Contains(t, rec.Body.String(), `handoff_media_down_streams{quality="poor"} 1`)
	require.NotContains(t, rec.Body.String(), "visit:1")
}

// videoSSRC is the SSRC of the video p receives (one sender).
func videoSSRC(t *testing.T, p *mediatest.Peer) uint32 {
	for _, r := range p.PC.GetReceivers() {
		if tr := r.Track(); tr != nil && tr.Kind() == webrtc.RTPCodecTypeVideo {
			return uint32(tr.SSRC())
		}
	}
	t.Fatal("no video received")
	return 0
}

// A subscriber whose page reports what arrives (TWCC) has an estimate of
// its downlink and a camera layer: its page is told both (the call view's
// quality line), and the metrics count them without naming anyone.
func TestTheSubscribersLinkReachesItsPageAndTheMetrics(t *testing.T) {
	n := newNode(t)
	opts := mediatest.Options{Simulcast: true, Feedback: true}
	doctor := mediatest.DialWith(t, n.url, n.sfu.Tokens().Mint("user:lee", "", time.Minute), "user:lee", 'D', opts)
	patient := mediatest.DialWith(t, n.url, n.sfu.Tokens().Mint("visit:1", "", time.Minute), "visit:1", 'P', opts)
	admit(t, n, "call-1", doctor, patient)
	patient.ReceivesFrom(t, doctor)

	var link mediatest.Message
	require.Eventually(t, func() bool {
		for {
			select {
			case m := <-patient.Events:
				if m.Type == "link" && m.Layer != "" && m.Layer != "paused" {
					link = m
					return true
				}
			default:
				return false
			}
		}
	}, 5*time.Second, 20*time.Millisecond, "the page is told its link")
	require.Greater(t, link.Estimate, 0)
	require.Contains(t, layerNames, link.Layer)

	rec := httptest.NewRecorder()
	n.sfu.Metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	require.Contains(t, body, "handoff_media_subscriber_estimate_bps_count 2", "both subscribers have an estimate")
	streams := 0
	for _, name := range layerNames {
		var v int
		for _, line := range strings.Split(body, "\n") {
			if _, err := fmt.Sscanf(line, "handoff_media_down_video_streams{layer=\""+name+"\"} %d", &v); err == nil {
				streams += v
			}
		}
	}
	require.Equal(t, 2, streams, "each subscriber gets the other's camera on one layer:\n%s", body)
	require.NotContains(t, body, "visit:1")
	require.NotContains(t, body, "user:lee")
}
