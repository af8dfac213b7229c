package tracing_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/handoff-telehealth/handoff/api"
	"github.com/handoff-telehealth/handoff/internal/testkit/testenv"
	"github.com/handoff-telehealth/handoff/media"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/tracing"
)

func post(t *testing.T, url, token string, body any) map[string]any {
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	require.Less(t, resp.StatusCode, 300, string(data))
	out := map[string]any{}
	_ = json.Unmarshal(data, &out)
	return out
}

// One transfer is one trace: the API request, the workflow update, the
// activities, and the media node's control call.
func TestATransferIsOneTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tracing.Use(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))

	e := testenv.Start(t)
	mediaSrv, err := media.NewServer(testenv.MediaSecret, "trace-control")
	require.NoError(t, err)
	hs := httptest.NewServer(mediaSrv.Handler())
	t.Cleanup(hs.Close)
	e.StartWorker(media.NewControlClient(hs.URL, "trace-control"))
	srv := httptest.NewServer(api.NewRouter(api.Deps{DB: e.DB, Temporal: e.Client, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	t.Cleanup(srv.Close)
	base := srv.URL + "/api/v1"

	token := post(t, base+"/auth/login", "", map[string]string{"email": "dr.lee@riverside.example", "password": store.DemoPassword})["token"].(string)
	visit := post(t, base+"/checkin/dr-lee", "", map[string]any{"name": "Pat Traced", "consent": true})["visit"].(map[string]any)["id"].(string)
	post(t, base+"/visits/"+visit+"/admit", token, map[string]string{})
	post(t, base+"/visits/"+visit+"/transfer", token, map[string]string{"targetRoomId": e.Room("dr-patel").ID})

	var names []string
	require.Eventually(t, func() bool {
		var root sdktrace.ReadOnlySpan
		for _, s := range rec.Ended() {
			if s.Name() == "POST /api/v1/visits/:id/transfer" {
				root = s
			}
		}
		if root == nil {
			return false
		}
		names = names[:0]
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID() == root.SpanContext().TraceID() {
				names = append(names, s.Name())
			}
		}
		joined := strings.Join(names, "|")
		return strings.Contains(joined, "transfer") && strings.Contains(joined, "DetachMedia") && strings.Contains(joined, "media control DELETE")
	}, 10*time.Second, 50*time.Millisecond, "spans of the transfer's trace: %v", names)
	for _, n := range names {
		require.NotContains(t, n, "Pat Traced", "span names carry no patient data")
		require.NotContains(t, n, visit, "nor ids in route names")
	}
	t.Logf("one trace: %s", strings.Join(names, ", "))
}
