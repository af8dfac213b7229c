package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
	"github.com/handoff-telehealth/handoff/internal/testkit/testenv"
	"github.com/handoff-telehealth/handoff/store"
)

// call sends one request; status 0 means the API was not there to answer.
func call(method, url, token string, body any, key string) (int, map[string]any) {
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, url, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	_ = json.Unmarshal(data, &out)
	return resp.StatusCode, out
}

// until retries a request on the same key until it gets an answer.
func until(t *testing.T, method, url, token string, body any, key string) (int, map[string]any) {
	deadline := time.Now().Add(4 * time.Minute)
	for time.Now().Before(deadline) {
		status, out := call(method, url, token, body, key)
		if status != 0 && status < 500 && status != http.StatusConflict && status != http.StatusTooManyRequests {
			return status, out
		}
		time.Sleep(100 * time.Millisecond) // API down, the first try still running, or rate limited
	}
	t.Fatalf("%s %s never answered", method, url)
	return 0, nil
}

func TestAPIKilledMidRequestClientsRetryWithTheSameKey(t *testing.T) {
	visits, per := 6, 4
	if long() {
		visits, per = 12, 8
	}
	e := testenv.Start(t)
	e.StartWorker(nil)
	bin := buildHandoff(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	a := &process{bin: bin, args: []string{"api", "--listen", addr, "--internal-listen", "127.0.0.1:0"}, env: append(os.Environ(),
		"HANDOFF_DB="+e.DSN, "HANDOFF_DATA_KEYS="+testdb.DataKeys, "HANDOFF_TEMPORAL_ADDRESS="+e.Server.Address(), "HANDOFF_CODEC_KEYS="+testenv.CodecKeys,
	)}
	a.start(t)
	t.Cleanup(a.kill)
	base := "http://" + addr + "/api/v1"
	_, login := until(t, "POST", base+"/auth/login", "", map[string]string{"email": "dr.lee@riverside.example", "password": store.DemoPassword}, "")
	token := login["token"].(string)
	ids := make([]string, visits)
	for i := range ids {
		_, r := until(t, "POST", base+"/checkin/dr-lee", "", map[string]any{"name": fmt.Sprintf("Pat Retry %d", i), "consent": true}, "")
		ids[i] = r["visit"].(map[string]any)["id"].(string)
	}

	stopKilling := killRepeatedly(50*time.Millisecond, 200*time.Millisecond, func() { a.kill(); a.start(t) })

	// Dr. Lee moves each patient between her room and Reception, one key per
	// transfer, retrying each key until it is answered.
	targets := []string{e.Room("riverside-reception").ID, e.Room("dr-lee").ID}
	keys := make([][]string, visits)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < per; k++ {
				key := uuid.NewString()
				keys[i] = append(keys[i], key)
				status, r := until(t, "POST", base+"/visits/"+id+"/transfer", token, map[string]string{"targetRoomId": targets[k%2]}, key)
				require.Equal(t, http.StatusOK, status, "%v", r)
			}
		}()
	}
	wg.Wait()
	stopKilling()
	t.Logf("%d transfers through an API killed %d times", visits*per, a.kills)
	require.Positive(t, a.kills)

	for i, id := range ids {
		require.Equal(t, per, e.Visit(id).Transfers, "exactly one transfer per key")
		for _, key := range keys[i] {
			var n int64
			e.DB.Gorm().Model(&store.AuditEvent{}).Where("visit_id = ? AND action = ? AND detail = ?", id, "transfer.completed", "transfer "+key).Count(&n)
			require.EqualValues(t, 1, n, "key %s took effect once", key)
		}
	}
}
