package media

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestControlAPIAndMetrics(t *testing.T) {
	srv, err := NewServer(testSecret, "control-token")
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	ctx := t.Context()

	denied := NewControlClient(hs.URL, "wrong")
	require.ErrorContains(t, denied.CreateCall(ctx, "c1"), "401")

	cc := NewControlClient(hs.URL, "control-token")
	require.NoError(t, cc.CreateCall(ctx, "c1"))
	require.NoError(t, cc.CreateCall(ctx, "c1"), "idempotent")
	require.NoError(t, cc.Attach(ctx, "c1", "visit:1"))
	require.NoError(t, cc.Attach(ctx, "c1", "user:lee"))
	require.NoError(t, cc.Detach(ctx, "c1", "visit:1"))
	require.NoError(t, cc.Detach(ctx, "c1", "visit:1"), "idempotent")
	members, ok := srv.SFU.Members("c1")
	require.True(t, ok)
	require.Equal(t, []string{"user:lee"}, members)
	require.NoError(t, cc.EndCall(ctx, "c1"))
	require.NoError(t, cc.EndCall(ctx, "c1"), "idempotent")
	require.ErrorIs(t, cc.Attach(ctx, "c1", "visit:1"), ErrNoSuchCall)

	// Traffic shows in the metrics.
	n := &node{sfu: srv.SFU, url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"}
	a, b := n.connect(t, "user:a", 'A'), n.connect(t, "visit:b", 'B')
	admit(t, n, "c2", a, b)
	a.ReceivesFrom(t, b)
	time.Sleep(100 * time.Millisecond)
	resp, err := http.Get(hs.URL + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	require.Contains(t, text, "handoff_media_active_calls 1")
	require.Contains(t, text, "handoff_media_participants 2")
	require.NotContains(t, text, "handoff_media_forwarded_packets_total 0\n")
	require.NotContains(t, text, "handoff_media_pli_total 0\n")
}

// Browsers reach the public handler: signaling and health, never the
// control API or the metrics, which the internal handler alone serves.
func TestControlAndMetricsOnlyOnTheInternalListener(t *testing.T) {
	srv, err := NewServer(testSecret, "control-token")
	require.NoError(t, err)
	public, internal := httptest.NewServer(srv.PublicHandler()), httptest.NewServer(srv.InternalHandler())
	defer public.Close()
	defer internal.Close()
	ctx := t.Context()

	status := func(base, method, path string) int {
		req, _ := http.NewRequestWithContext(ctx, method, base+path, nil)
		req.Header.Set("Authorization", "Bearer control-token")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, path := range []string{"/metrics", "/control/calls/c1/members"} {
		require.Equal(t, http.StatusNotFound, status(public.URL, "GET", path), "public %s", path)
	}
	require.Equal(t, http.StatusNotFound, status(public.URL, "POST", "/control/calls/c1"))
	require.Equal(t, http.StatusOK, status(public.URL, "GET", "/healthz"))
	require.Equal(t, http.StatusUnauthorized, status(public.URL, "GET", "/ws"), "signaling answers (it wants a media token)")

	require.NoError(t, NewControlClient(internal.URL, "control-token").CreateCall(ctx, "c1"))
	require.Equal(t, http.StatusOK, status(internal.URL, "GET", "/metrics"))
	require.Equal(t, http.StatusNotFound, status(internal.URL, "GET", "/ws"), "no signaling on the internal listener")
}
