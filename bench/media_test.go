package bench_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/bench"
	"github.com/handoff-telehealth/handoff/internal/testkit/mediatest"
	"github.com/handoff-telehealth/handoff/media"
)

var mediaRuns = 100

// measureMedia admits one patient session into a fresh call with a provider
// runs times: admit → the provider's first keyframe from the patient; then
// detach → the last packet from the patient at the provider.
func measureMedia(t testing.TB, runs int) (keyframe, silence bench.Stats) {
	srv, err := media.NewServer("bench-media-secret-0123456789abcdef", "bench-control-token-0123456789abcdef")
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
	tokens := srv.SFU.Tokens()
	ctx := t.Context()
	provider := mediatest.Dial(t, url, tokens.Mint("user:doc", "", time.Minute), "user:doc", 'D')
	patient := mediatest.Dial(t, url, tokens.Mint("visit:p", "", time.Minute), "visit:p", 'P')

	var firstKeyframe, lastPacket []time.Duration
	for i := 0; i < runs; i++ {
		call := fmt.Sprintf("call-%d", i)
		require.NoError(t, srv.SFU.CreateCall(ctx, call))
		require.NoError(t, srv.SFU.Attach(ctx, call, "user:doc"))
		provider.Join(tokens.Mint("user:doc", call, time.Minute))
		require.NoError(t, srv.SFU.Attach(ctx, call, "visit:p"))
		admitted := time.Now()
		patient.Join(tokens.Mint("visit:p", call, time.Minute))
		require.Eventually(t, func() bool { return keyframeAfter(provider, admitted) > 0 }, 5*time.Second, time.Millisecond)
		firstKeyframe = append(firstKeyframe, keyframeAfter(provider, admitted))

		detached := time.Now()
		require.NoError(t, srv.SFU.Detach(ctx, call, "visit:p"))
		time.Sleep(300 * time.Millisecond)
		lastPacket = append(lastPacket, max(0, provider.LastFrom('P').Sub(detached)))
		require.NoError(t, srv.SFU.EndCall(ctx, call))
	}
	return bench.Summarize(firstKeyframe), bench.Summarize(lastPacket)
}

func keyframeAfter(p *mediatest.Peer, since time.Time) time.Duration {
	for _, at := range p.KeyframesFrom('P') {
		if at.After(since) {
			return at.Sub(since)
		}
	}
	return 0
}

// BenchmarkMediaAdmitAndDetach: admit → first keyframe at the provider, and
// detach → silence, over 100 runs on loopback.
func BenchmarkMediaAdmitAndDetach(b *testing.B) {
	for i := 0; i < b.N; i++ {
		kf, si := measureMedia(b, mediaRuns)
		b.Logf("admit → first keyframe: %s", kf)
		b.Logf("detach → silence: %s", si)
		b.ReportMetric(float64(kf.P50.Microseconds())/1000, "keyframe-p50-ms")
		b.ReportMetric(float64(kf.P99.Microseconds())/1000, "keyframe-p99-ms")
		b.ReportMetric(float64(si.P50.Microseconds())/1000, "silence-p50-ms")
		b.ReportMetric(float64(si.P99.Microseconds())/1000, "silence-p99-ms")
	}
}

func TestMediaHarnessRuns(t *testing.T) {
	kf, si := measureMedia(t, 3)
	require.Equal(t, 3, kf.N)
	require.Equal(t, 3, si.N)
}
