package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/api"
	"github.com/handoff-telehealth/handoff/internal/testkit/testenv"
	"github.com/handoff-telehealth/handoff/replay"
	"github.com/handoff-telehealth/handoff/workflows"
)

// An operator reading a visit's Temporal payloads through the codec server
// (as the Temporal UI does) leaves an audit row in the visit's clinic: the
// operator's address, the visit, the namespace. A refused decode leaves none.
func TestCodecDecodesAreAudited(t *testing.T) {
	e := testenv.Start(t)
	e.StartWorker(nil)
	const token = "codec-audit-token-0123456789abcdef"
	s := startAPI(t, e, func(d *api.Deps) {
		d.CodecServer = e.Codec.CodecServer(token, nil, api.AuditDecodes(d.DB, d.Logger))
	})
	visit, _ := s.checkIn("dr-lee", "Pat Decoded")
	h, err := replay.Fetch(t.Context(), e.Client, workflows.VisitWorkflowID(visit), "")
	require.NoError(t, err)
	var payloads []any
	for _, p := range h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads() {
		payloads = append(payloads, map[string]any{"metadata": p.GetMetadata(), "data": p.GetData()})
	}
	body, err := json.Marshal(map[string]any{"payloads": payloads})
	require.NoError(t, err)
	decode := func(tok string) int {
		req, _ := http.NewRequest(http.MethodPost, s.url+"/codec/decode", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Namespace", "default")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	trail := func() []map[string]any {
		r := s.do("GET", "/audit?action=access.payloads_decoded", s.login(admin), nil)
		require.Equal(t, http.StatusOK, r.Status, r.Raw)
		var rows []map[string]any
		for _, row := range r.Body["audit"].([]any) {
			rows = append(rows, row.(map[string]any))
		}
		return rows
	}

	require.Equal(t, http.StatusUnauthorized, decode("a guess"))
	require.Empty(t, trail(), "a refused decode read nothing")
	require.Equal(t, http.StatusOK, decode(token))
	rows := trail()
	require.Len(t, rows, 1)
	require.Equal(t, visit, rows[0]["visitId"])
	require.Equal(t, api.CodecOperator, rows[0]["actorId"])
	require.Equal(t, "127.0.0.1", rows[0]["address"])
	require.Contains(t, rows[0]["detail"], "namespace default")
}
