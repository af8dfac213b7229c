package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/api"
	"github.com/handoff-telehealth/handoff/bench"
	"github.com/handoff-telehealth/handoff/store"
)

var waitingPatients = 200

type httpBench struct {
	t   testing.TB
	url string
}

func (b httpBench) post(path, token string, body any) map[string]any {
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", b.url+"/api/v1"+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	out := map[string]any{}
	data, _ := io.ReadAll(resp.Body)
	require.Less(b.t, resp.StatusCode, 300, string(data))
	_ = json.Unmarshal(data, &out)
	return out
}

// watch opens a patient's stream and reports when an event of typ arrives.
func (b httpBench) watch(ctx context.Context, token, typ string) <-chan time.Time {
	req, _ := http.NewRequestWithContext(ctx, "GET", b.url+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(b.t, err)
	got := make(chan time.Time, 1)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() == "event: "+typ {
				got <- time.Now()
				return
			}
		}
	}()
	return got
}

// measureHTTP checks in n patients (timing each POST), then transfers each
// one, timing the provider's request to the patient's SSE confirmation.
func measureHTTP(t testing.TB, n int) (checkIn, transfer, floor bench.Stats) {
	e := startBenchEnv(t)
	db, err := store.Open(context.Background(), e.DSN)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = db.ListenForEvents(ctx) }()
	srv := httptest.NewServer(api.NewRouter(api.Deps{DB: db, Temporal: e.Client, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LoginRate: 1000, CheckInRate: 1000}))
	t.Cleanup(srv.Close)
	b := httpBench{t: t, url: srv.URL}
	lee := b.post("/auth/login", "", map[string]string{"email": "dr.lee@riverside.example", "password": store.DemoPassword})["token"].(string)

	var checkIns []time.Duration
	ids, tokens := make([]string, n), make([]string, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		r := b.post("/checkin/dr-lee", "", map[string]any{"name": "Bench Patient", "consent": true})
		checkIns = append(checkIns, time.Since(start))
		ids[i], tokens[i] = r["visit"].(map[string]any)["id"].(string), r["token"].(string)
	}
	fl, err := bench.FloorUpdates(ctx, e.Client, floorQueue, n)
	require.NoError(t, err)
	var transfers []time.Duration
	target := e.Room("dr-patel").ID
	for i := 0; i < n; i++ {
		seen := b.watch(ctx, tokens[i], "visit.transferred")
		start := time.Now()
		b.post("/visits/"+ids[i]+"/transfer", lee, map[string]string{"targetRoomId": target})
		select {
		case at := <-seen:
			transfers = append(transfers, at.Sub(start))
		case <-time.After(10 * time.Second):
			t.Fatalf("patient %d never saw the transfer", i)
		}
	}
	return bench.Summarize(checkIns), bench.Summarize(transfers), bench.Summarize(fl)
}
