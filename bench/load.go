package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Client calls the API as the pages do. Requests share a pool of kept-alive
// connections; event streams each hold their own.
type Client struct {
	base    string
	calls   *http.Client
	streams *http.Client
}

// NewClient talks to the API at base (http://host:port).
func NewClient(base string) *Client {
	calls := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}
	streams := &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}
	return &Client{base: base, calls: &http.Client{Transport: calls, Timeout: 30 * time.Second}, streams: &http.Client{Transport: streams}}
}

// Post sends body as JSON and decodes the answer into out (nil: discard).
// key, when given, is the Idempotency-Key.
func (c *Client) Post(ctx context.Context, path, token, key string, body, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+"/api/v1"+path, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.calls.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, strings.TrimSpace(string(data)))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// Login signs a provider in and returns its token.
func (c *Client) Login(ctx context.Context, email, password string) (string, error) {
	var out struct{ Token string }
	err := c.Post(ctx, "/auth/login", "", "", map[string]string{"email": email, "password": password}, &out)
	return out.Token, err
}

// Patient is a checked-in visit as its page holds it.
type Patient struct {
	VisitID, Token string
	Room           int // index into the scenario's rooms: where the patient waits now
}

// CheckIn checks a patient in by a room's link.
func (c *Client) CheckIn(ctx context.Context, slug string) (Patient, error) {
	var out struct {
		Token string
		Visit struct{ ID string }
	}
	err := c.Post(ctx, "/checkin/"+slug, "", uuid.NewString(), map[string]any{"name": "Bench Patient", "consent": true}, &out)
	return Patient{VisitID: out.Visit.ID, Token: out.Token}, err
}

// What a stream saw, keyed by visit: the moments a scenario waits for.
const (
	PatientTransferred = "patient:visit.transferred" // the patient's "You have been transferred…"
	CardTransferred    = "room:card.transferred"     // the receiving room's card
	CardCheckedIn      = "room:visit.checked_in"     // the provider's new card
)

// Arrivals records when each awaited event first reached a stream.
type Arrivals struct {
	mu      sync.Mutex
	seen    map[string]time.Time
	waiters map[string][]chan time.Time
}

// NewArrivals is an empty record.
func NewArrivals() *Arrivals {
	return &Arrivals{seen: map[string]time.Time{}, waiters: map[string][]chan time.Time{}}
}

func arrivalKey(what, visitID string) string { return what + "/" + visitID }

func (a *Arrivals) record(what, visitID string, at time.Time) {
	k := arrivalKey(what, visitID)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen[k] = at
	for _, w := range a.waiters[k] {
		w <- at
	}
	delete(a.waiters, k)
}

// Forget drops what was seen for a visit, before it is awaited again.
func (a *Arrivals) Forget(what, visitID string) {
	a.mu.Lock()
	delete(a.seen, arrivalKey(what, visitID))
	a.mu.Unlock()
}

// Wait returns when the event reached its stream (it may have before Wait
// was called: events can beat the request's answer), or false after timeout.
func (a *Arrivals) Wait(ctx context.Context, what, visitID string, timeout time.Duration) (time.Time, bool) {
	k := arrivalKey(what, visitID)
	a.mu.Lock()
	if at, ok := a.seen[k]; ok {
		a.mu.Unlock()
		return at, true
	}
	ch := make(chan time.Time, 1)
	a.waiters[k] = append(a.waiters[k], ch)
	a.mu.Unlock()
	select {
	case at := <-ch:
		return at, true
	case <-time.After(timeout):
	case <-ctx.Done():
	}
	return time.Time{}, false
}

// Watch opens an event stream with token (a patient's or a provider's) and
// records the events scenarios wait for into a, until ctx ends. It returns
// once the stream is open.
func (c *Client) Watch(ctx context.Context, token string, patient bool, a *Arrivals) error {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/api/v1/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.streams.Do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return fmt.Errorf("events: %s", resp.Status)
	}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var typ string
		for sc.Scan() {
			line := sc.Text()
			if t, ok := strings.CutPrefix(line, "event: "); ok {
				typ = t
				continue
			}
			data, ok := strings.CutPrefix(line, "data: ")
			if !ok {
				continue
			}
			at := time.Now()
			if what, visit := classify(patient, typ, data); what != "" {
				a.record(what, visit, at)
			}
		}
	}()
	return nil
}

// classify names an event a scenario waits for. In a provider's stream the
// receiving room's card names the room the patient came from; the sending
// room's "Transferred to" names the target instead.
func classify(patient bool, typ, data string) (what, visitID string) {
	var p struct {
		VisitID               string `json:"visitId"`
		TransferredFromRoomID string `json:"transferredFromRoomId"`
	}
	if typ != "visit.transferred" && typ != "visit.checked_in" {
		return "", ""
	}
	if json.Unmarshal([]byte(data), &p) != nil || p.VisitID == "" {
		return "", ""
	}
	switch {
	case patient && typ == "visit.transferred":
		return PatientTransferred, p.VisitID
	case patient:
		return "", ""
	case typ == "visit.checked_in":
		return CardCheckedIn, p.VisitID
	case p.TransferredFromRoomID != "":
		return CardTransferred, p.VisitID
	}
	return "", ""
}

// OpenLoop calls fn n times at rate per second on a fixed schedule, each in
// its own goroutine, whether or not earlier calls have returned: a slow
// server gets more concurrent requests, as it would from real clients. fn
// gets its scheduled start, from which its latency is measured (so a late
// generator cannot hide latency). It returns when every call has.
func OpenLoop(ctx context.Context, rate float64, n int, fn func(i int, scheduled time.Time)) {
	var wg sync.WaitGroup
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	for i := 0; i < n && ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(i, at)
		}()
	}
	wg.Wait()
}
