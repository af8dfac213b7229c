package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/api"
	"github.com/handoff-telehealth/handoff/internal/testkit/testenv"
	"github.com/handoff-telehealth/handoff/metrics"
	"github.com/handoff-telehealth/handoff/store"
)

const (
	lee      = "dr.lee@riverside.example"
	patel    = "dr.patel@riverside.example"
	frontDsk = "frontdesk@riverside.example"
	admin    = "admin@riverside.example"
	grant    = "dr.grant@lakeview.example"
	cho      = "dr.cho@hillside.example"
)

// service is the API over HTTP in front of a real back end.
type service struct {
	t   *testing.T
	env *testenv.Env
	url string
	// internalURL serves the process's metrics, apart from what browsers reach.
	internalURL string
	db          *store.DB
	// openapi records the exchanges validated against the API document
	// (openapi_test.go).
	openapi *documentCheck
}

// startAPI runs an API instance with its own database handle, as a separate
// process would have: it learns of events only through PostgreSQL NOTIFY.
func startAPI(t *testing.T, e *testenv.Env, tweak func(*api.Deps)) *service {
	db, err := store.Open(context.Background(), e.DSN)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = db.ListenForEvents(ctx) }()
	tokens := e.Calls.Tokens()
	deps := api.Deps{DB: db, Temporal: e.Client, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LoginRate: 100, CheckInRate: 100,
		MediaTokens: &tokens, MediaURL: "ws://media.invalid/ws", Metrics: metrics.New()}
	if tweak != nil {
		tweak(&deps)
	}
	srv := httptest.NewServer(api.NewRouter(deps))
	t.Cleanup(srv.Close)
	internal := httptest.NewServer(api.NewInternalRouter(deps))
	t.Cleanup(internal.Close)
	return &service{t: t, env: e, url: srv.URL, internalURL: internal.URL, db: db, openapi: newDocumentCheck()}
}

func newService(t *testing.T) *service {
	e := testenv.Start(t)
	e.StartWorker(nil)
	return startAPI(t, e, nil)
}

type response struct {
	Status  int
	Body    map[string]any
	Raw     string
	Headers http.Header
}

func (r response) header(name string) string { return r.Headers.Get(name) }

func (r response) str(path ...string) string {
	var v any = r.Body
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	s, _ := v.(string)
	return s
}

// do sends a request to the API and reads its answer; both are validated
// against the API document (checkExchange).
func (s *service) do(method, path, token string, body any, headers ...string) response {
	s.t.Helper()
	var rd io.Reader
	var sent []byte
	switch b := body.(type) {
	case nil:
	case string:
		sent = []byte(b)
		rd = bytes.NewReader(sent)
	default:
		raw, err := json.Marshal(b)
		require.NoError(s.t, err)
		sent = raw
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.url+"/api/v1"+path, rd)
	require.NoError(s.t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	s.checkExchange(req, sent, resp, raw, false)
	out := response{Status: resp.StatusCode, Raw: string(raw), Headers: resp.Header}
	_ = json.Unmarshal(raw, &out.Body)
	return out
}

func (s *service) login(email string) string {
	r := s.do("POST", "/auth/login", "", map[string]string{"email": email, "password": store.DemoPassword})
	require.Equal(s.t, http.StatusOK, r.Status, r.Raw)
	return r.str("token")
}

// checkIn checks a patient in by the room's link; it returns the visit id
// and the patient's token.
func (s *service) checkIn(slug, name string) (string, string) {
	r := s.do("POST", "/checkin/"+slug, "", map[string]any{"name": name, "consent": true})
	require.Equal(s.t, http.StatusCreated, r.Status, r.Raw)
	return r.str("visit", "id"), r.str("token")
}

func (s *service) roomID(slug string) string { return s.env.Room(slug).ID }

// sse is a live-event stream.
type sse struct {
	events chan sseEvent
	cancel func()
}

type sseEvent struct {
	ID   string
	Type string
	Data map[string]any
}

func (s *service) stream(token, lastEventID string) *sse {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", s.url+"/api/v1/events", nil)
	require.NoError(s.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	require.Equal(s.t, http.StatusOK, resp.StatusCode)
	s.checkExchange(req, nil, resp, nil, true)
	st := &sse{events: make(chan sseEvent, 100), cancel: cancel}
	s.t.Cleanup(cancel)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				ev.ID = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				ev.Type = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.Data)
			case line == "" && ev.Type != "":
				st.events <- ev
				ev = sseEvent{}
			}
		}
		close(st.events)
	}()
	return st
}

// next waits for the next event of the given type, skipping others.
func (st *sse) next(t *testing.T, typ string) sseEvent {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-st.events:
			require.True(t, ok, "stream closed before %s", typ)
			if ev.Type == typ {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event within 10s", typ)
		}
	}
}

func (st *sse) nextFor(t *testing.T, typ, field, value string) sseEvent {
	t.Helper()
	for {
		ev := st.next(t, typ)
		if fmt.Sprint(ev.Data[field]) == value {
			return ev
		}
	}
}

func TestWholeSpecFromTheWaitingRoom(t *testing.T) {
	s := newService(t)
	pub := s.do("GET", "/checkin/dr-lee", "", nil)
	require.Equal(t, http.StatusOK, pub.Status)
	require.Equal(t, "Dr. Maya Lee", pub.str("displayName"))

	leeTok, patelTok := s.login(lee), s.login(patel)
	leeEvents, patelEvents := s.stream(leeTok, ""), s.stream(patelTok, "")
	visit, patientTok := s.checkIn("dr-lee", "Pat Example")
	patientEvents := s.stream(patientTok, "")

	arrived := leeEvents.next(t, "visit.checked_in")
	require.Equal(t, "Pat Example", arrived.Data["patientName"])
	wr := s.do("GET", "/rooms/"+s.roomID("dr-lee")+"/waiting", leeTok, nil)
	require.Equal(t, http.StatusOK, wr.Status)
	require.Contains(t, wr.Raw, "Pat Example")

	require.Eventually(t, func() bool { // Patel's stream makes him online
		return strings.Contains(s.do("GET", "/rooms", leeTok, nil).Raw, `"online":[{"id":"`+s.env.User(patel).ID)
	}, 5*time.Second, 100*time.Millisecond)

	tr := s.do("POST", "/visits/"+visit+"/transfer", leeTok, map[string]string{"targetRoomId": s.roomID("dr-patel"), "note": "labs are in"},
		"Idempotency-Key", "transfer-1")
	require.Equal(t, http.StatusOK, tr.Status, tr.Raw)
	require.Equal(t, "Transferred to Dr. Arjun Patel", tr.str("message"))
	require.Equal(t, true, tr.Body["targetOnline"])

	require.Equal(t, "Taking you to Dr. Arjun Patel's room now", patientEvents.next(t, "visit.transfer_started").Data["message"])
	require.Equal(t, "You have been transferred to Dr. Arjun Patel's room", patientEvents.next(t, "visit.transferred").Data["message"])
	require.Equal(t, "Transferred to Dr. Arjun Patel", leeEvents.next(t, "visit.transferred").Data["message"])
	received := patelEvents.next(t, "visit.transferred")
	require.Equal(t, "Transferred by Dr. Maya Lee", received.Data["message"])
	require.Equal(t, "labs are in", received.Data["note"])

	list := s.do("GET", "/rooms/"+s.roomID("dr-patel")+"/waiting", patelTok, nil)
	require.Equal(t, http.StatusOK, list.Status)
	waiting := list.Body["waiting"].([]any)
	require.Len(t, waiting, 1)
	require.Equal(t, "Transferred by Dr. Maya Lee", waiting[0].(map[string]any)["message"])
	require.NotContains(t, s.do("GET", "/rooms/"+s.roomID("dr-lee")+"/waiting", leeTok, nil).Raw, "Pat Example")

	card := s.do("GET", "/visits/"+visit, patelTok, nil)
	require.Equal(t, http.StatusOK, card.Status)
	require.Equal(t, "Transferred by Dr. Maya Lee", card.str("visit", "message"))
	require.Equal(t, "Dr. Maya Lee", card.str("visit", "transferredBy", "name"))
	mine := s.do("GET", "/visits/"+visit, patientTok, nil)
	require.Equal(t, "You have been transferred to Dr. Arjun Patel's room", mine.str("visit", "message"))
	require.Equal(t, "Dr. Arjun Patel", mine.str("visit", "waitingFor"))

	ad := s.do("POST", "/visits/"+visit+"/admit", patelTok, nil)
	require.Equal(t, http.StatusOK, ad.Status, ad.Raw)
	require.Equal(t, "one_to_one", ad.str("call", "kind"))
	patientEvents.next(t, "visit.admitted")

	// The API process's /metrics counts the transfer request by route, on
	// the internal listener only.
	resp, err := http.Get(s.url + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "no metrics where browsers reach")
	resp, err = http.Get(s.internalURL + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(body), `handoff_http_requests_total{method="POST",route="/api/v1/visits/:id/transfer",status="OK"} 1`)
	require.Contains(t, string(body), `handoff_sse_clients 3`)
	require.NotContains(t, string(body), "Pat Example")
}

func TestTransferDuringCallsOverHTTP(t *testing.T) {
	s := newService(t)
	leeTok := s.login(lee)
	one, _ := s.checkIn("dr-lee", "Pat One")
	call := s.do("POST", "/visits/"+one+"/admit", leeTok, nil)
	require.Equal(t, http.StatusOK, call.Status, call.Raw)
	app := s.do("POST", "/calls/"+call.str("call", "id")+"/apps", leeTok, map[string]string{"app": "notes", "data": "private"})
	require.Equal(t, http.StatusCreated, app.Status, app.Raw)
	tr := s.do("POST", "/visits/"+one+"/transfer", leeTok, map[string]string{"targetRoomId": s.roomID("dr-patel")})
	require.Equal(t, http.StatusOK, tr.Status, tr.Raw)
	require.Equal(t, true, tr.Body["callEnded"], "a 1:1 call ends for the sender")
	var a store.AppSession
	require.NoError(t, s.db.Gorm().Take(&a, "id = ?", app.str("app", "id")).Error)
	require.Nil(t, a.Data)

	two, _ := s.checkIn("riverside-reception", "Pat Two")
	three, _ := s.checkIn("riverside-reception", "Pat Three")
	deskTok := s.login(frontDsk)
	g := s.do("POST", "/visits/"+two+"/admit", deskTok, nil)
	require.Equal(t, http.StatusOK, g.Status, g.Raw)
	g2 := s.do("POST", "/visits/"+three+"/admit", deskTok, map[string]string{"callId": g.str("call", "id")})
	require.Equal(t, "group", g2.str("call", "kind"))
	tr = s.do("POST", "/visits/"+two+"/transfer", deskTok, map[string]string{"targetRoomId": s.roomID("dr-lee")})
	require.Equal(t, http.StatusOK, tr.Status, tr.Raw)
	require.Equal(t, false, tr.Body["callEnded"], "the sender stays in the group call")
	require.Equal(t, "in_call", s.do("GET", "/visits/"+three, deskTok, nil).str("visit", "state"))
}

func TestRefusalsChangeNothing(t *testing.T) {
	s := newService(t)
	leeTok, patelTok, grantTok, choTok := s.login(lee), s.login(patel), s.login(grant), s.login(cho)
	visit, patientTok := s.checkIn("dr-lee", "Pat Example")
	free, _ := s.checkIn("dr-cho", "Pat Free")
	_, otherPatientTok := s.checkIn("dr-patel", "Pat Other")
	to := func(slug string) map[string]string { return map[string]string{"targetRoomId": s.roomID(slug)} }
	cases := []struct {
		name, token, visit string
		body               any
		status             int
		code               string
	}{
		{"no token", "", visit, to("dr-patel"), 401, "unauthorized"},
		{"bad token", "hs_forged", visit, to("dr-patel"), 401, "unauthorized"},
		{"patient token", patientTok, visit, to("dr-patel"), 401, "unauthorized"},
		{"another patient's token", otherPatientTok, visit, to("dr-patel"), 401, "unauthorized"},
		{"provider of another clinic", grantTok, visit, to("dr-patel"), 404, "not_found"},
		{"target in another clinic", leeTok, visit, to("dr-grant"), 404, "not_found"},
		{"no access to the room", patelTok, visit, to("riverside-urgent"), 403, "forbidden"},
		{"free plan", choTok, free, to("dr-park"), 403, "plan_required"},
		{"same room", leeTok, visit, to("dr-lee"), 422, "same_room"},
		{"malformed JSON", leeTok, visit, `{"targetRoomId":`, 400, "bad_request"},
		{"unknown field", leeTok, visit, `{"targetRoomId":"x","room":"y"}`, 400, "bad_request"},
		{"missing target", leeTok, visit, map[string]string{}, 400, "bad_request"},
		{"note too long", leeTok, visit, map[string]string{"targetRoomId": s.roomID("dr-patel"), "note": strings.Repeat("n", 501)}, 400, "bad_request"},
		{"unknown visit", leeTok, "00000000-0000-4000-8000-000000000000", to("dr-patel"), 404, "not_found"},
	}
	for _, tc := range cases {
		r := s.do("POST", "/visits/"+tc.visit+"/transfer", tc.token, tc.body)
		require.Equal(t, tc.status, r.Status, "%s: %s", tc.name, r.Raw)
		require.Equal(t, tc.code, r.str("error", "code"), tc.name)
		require.NotEmpty(t, r.str("error", "message"), tc.name)
	}
	require.Contains(t, s.do("POST", "/visits/"+free+"/transfer", choTok, to("dr-park")).Raw, "requires the Premium plan")
	for _, id := range []string{visit, free} {
		var v store.Visit
		require.NoError(t, s.db.Gorm().Take(&v, "id = ?", id).Error)
		require.Zero(t, v.Transfers)
		require.Equal(t, store.VisitWaiting, v.State)
	}
	var started int64
	s.db.Gorm().Model(&store.AuditEvent{}).Where("action = ?", "transfer.started").Count(&started)
	require.Zero(t, started)
	// A free clinic sees no shared rooms and no transfer feature.
	me := s.do("GET", "/me", choTok, nil)
	require.Equal(t, false, me.Body["features"].(map[string]any)["transfer"])
}

func TestEventsResumeWithoutLoss(t *testing.T) {
	s := newService(t)
	leeTok := s.login(lee)
	visit, patientTok := s.checkIn("dr-lee", "Pat Resume")
	first := s.stream(patientTok, "0")
	// Nothing for the patient yet; start a transfer and drop the stream after
	// its first event.
	tr := s.do("POST", "/visits/"+visit+"/transfer", leeTok, map[string]string{"targetRoomId": s.roomID("dr-patel")})
	require.Equal(t, http.StatusOK, tr.Status, tr.Raw)
	started := first.next(t, "visit.transfer_started")
	first.cancel()
	// More happens while the patient is away.
	patelTok := s.login(patel)
	tr = s.do("POST", "/visits/"+visit+"/transfer", patelTok, map[string]string{"targetRoomId": s.roomID("riverside-urgent")})
	require.Equal(t, http.StatusOK, tr.Status, tr.Raw)

	again := s.stream(patientTok, started.ID)
	var got []string
	var lastID string
	for len(got) < 3 {
		ev := <-again.events
		require.Greater(t, len(ev.ID), 0)
		if lastID != "" {
			require.Greater(t, atoi(ev.ID), atoi(lastID), "in order")
		}
		lastID = ev.ID
		got = append(got, ev.Type+": "+fmt.Sprint(ev.Data["message"]))
	}
	require.Equal(t, []string{
		"visit.transferred: You have been transferred to Dr. Arjun Patel's room",
		"visit.transfer_started: Taking you to Urgent Care's room now",
		"visit.transferred: You have been transferred to Urgent Care's room",
	}, got, "everything missed, once, in order")
	select {
	case ev := <-again.events:
		t.Fatalf("unexpected extra event %v", ev)
	case <-time.After(500 * time.Millisecond):
	}
	bad := s.do("GET", "/events", patientTok, nil, "Last-Event-ID", "99999999999999999999999")
	require.Equal(t, http.StatusBadRequest, bad.Status)
}

func atoi(s string) int64 {
	var n int64
	fmt.Sscan(s, &n)
	return n
}

func TestTwoAPIProcessesBothDeliver(t *testing.T) {
	e := testenv.Start(t)
	e.StartWorker(nil)
	a, b := startAPI(t, e, nil), startAPI(t, e, nil)
	onA, onB := a.stream(a.login(patel), ""), b.stream(b.login(patel), "")
	visit, _ := a.checkIn("dr-lee", "Pat Shared")
	tr := b.do("POST", "/visits/"+visit+"/transfer", b.login(lee), map[string]string{"targetRoomId": a.roomID("dr-patel")})
	require.Equal(t, http.StatusOK, tr.Status, tr.Raw)
	for _, st := range []*sse{onA, onB} {
		require.Equal(t, "Transferred by Dr. Maya Lee", st.nextFor(t, "visit.transferred", "visitId", visit).Data["message"])
	}
}

func TestConcurrentTransfersOneWinsOverHTTP(t *testing.T) {
	s := newService(t)
	leeTok, deskTok := s.login(lee), s.login(frontDsk)
	visit, _ := s.checkIn("riverside-reception", "Pat Contested")
	targets := []struct{ tok, slug string }{{leeTok, "dr-lee"}, {deskTok, "riverside-urgent"}, {leeTok, "dr-patel"}, {deskTok, "dr-patel"}, {leeTok, "riverside-urgent"}}
	statuses := make([]int, len(targets))
	var wg sync.WaitGroup
	for i, tg := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// As the dashboards send it: the room each sender saw the patient in.
			statuses[i] = s.do("POST", "/visits/"+visit+"/transfer", tg.tok, map[string]string{
				"targetRoomId": s.roomID(tg.slug), "fromRoomId": s.roomID("riverside-reception")}).Status
		}()
	}
	wg.Wait()
	counts := map[int]int{}
	for _, st := range statuses {
		counts[st]++
	}
	require.Equal(t, map[int]int{200: 1, 409: len(targets) - 1}, counts)
}

// A sender whose view is stale (the patient moved since it loaded) is told
// so, not that it cannot act for the room the patient is in now; someone
// who never could act for the room they name learns nothing.
func TestTransferFromAStaleViewIsAConflict(t *testing.T) {
	s := newService(t)
	leeTok, deskTok, patelTok := s.login(lee), s.login(frontDsk), s.login(patel)
	visit, _ := s.checkIn("riverside-reception", "Pat Stale")
	reception := s.roomID("riverside-reception")
	moved := s.do("POST", "/visits/"+visit+"/transfer", leeTok, map[string]string{"targetRoomId": s.roomID("dr-lee"), "fromRoomId": reception})
	require.Equal(t, http.StatusOK, moved.Status, moved.Raw)

	stale := s.do("POST", "/visits/"+visit+"/transfer", deskTok, map[string]string{"targetRoomId": s.roomID("riverside-urgent"), "fromRoomId": reception})
	require.Equal(t, http.StatusConflict, stale.Status, stale.Raw)
	require.Contains(t, stale.Raw, "has just been moved")

	stranger := s.do("POST", "/visits/"+visit+"/transfer", patelTok, map[string]string{"targetRoomId": s.roomID("riverside-urgent"), "fromRoomId": reception})
	require.Equal(t, http.StatusForbidden, stranger.Status, stranger.Raw)

	sameRoomStale := s.do("POST", "/visits/"+visit+"/transfer", leeTok, map[string]string{"targetRoomId": s.roomID("dr-patel"), "fromRoomId": reception})
	require.Equal(t, http.StatusConflict, sameRoomStale.Status, sameRoomStale.Raw)

	unknownRoom := s.do("POST", "/visits/"+visit+"/transfer", leeTok, map[string]string{"targetRoomId": s.roomID("dr-patel"), "fromRoomId": "not-a-room"})
	require.Equal(t, http.StatusNotFound, unknownRoom.Status, unknownRoom.Raw)

	var v store.Visit
	require.NoError(t, s.db.Gorm().Take(&v, "id = ?", visit).Error)
	require.Equal(t, 1, v.Transfers, "no refused transfer moved the patient")
	require.Equal(t, s.roomID("dr-lee"), v.RoomID)
}

func TestSameIdempotencyKeySameAnswer(t *testing.T) {
	s := newService(t)
	leeTok := s.login(lee)
	visit, _ := s.checkIn("dr-lee", "Pat Retry")
	body := map[string]string{"targetRoomId": s.roomID("dr-patel")}
	first := s.do("POST", "/visits/"+visit+"/transfer", leeTok, body, "Idempotency-Key", "k-123")
	again := s.do("POST", "/visits/"+visit+"/transfer", leeTok, body, "Idempotency-Key", "k-123")
	require.Equal(t, http.StatusOK, first.Status, first.Raw)
	require.Equal(t, http.StatusOK, again.Status, again.Raw)
	require.Equal(t, first.str("message"), again.str("message"))
	var v store.Visit
	require.NoError(t, s.db.Gorm().Take(&v, "id = ?", visit).Error)
	require.Equal(t, 1, v.Transfers)

	// Into a room the sender acts for too (Dr. Lee is a member of
	// Reception): on the retry the patient is already there, by this very
	// transfer, and the sender reads the first answer, not "already in that
	// room".
	shared, _ := s.checkIn("dr-lee", "Pat Retry Shared")
	body = map[string]string{"targetRoomId": s.roomID("riverside-reception")}
	first = s.do("POST", "/visits/"+shared+"/transfer", leeTok, body, "Idempotency-Key", "k-456")
	again = s.do("POST", "/visits/"+shared+"/transfer", leeTok, body, "Idempotency-Key", "k-456")
	require.Equal(t, http.StatusOK, first.Status, first.Raw)
	require.Equal(t, http.StatusOK, again.Status, again.Raw)
	require.Equal(t, first.str("message"), again.str("message"))
	other := s.do("POST", "/visits/"+shared+"/transfer", leeTok, body, "Idempotency-Key", "k-789")
	require.Equal(t, http.StatusUnprocessableEntity, other.Status, "a new transfer to the room the patient is in is refused: %s", other.Raw)
	var moved store.Visit
	require.NoError(t, s.db.Gorm().Take(&moved, "id = ?", shared).Error)
	require.Equal(t, 1, moved.Transfers)
}

func TestSessions(t *testing.T) {
	s := newService(t)
	tok := s.login(lee)
	require.Equal(t, http.StatusOK, s.do("GET", "/me", tok, nil).Status)
	require.Equal(t, http.StatusUnauthorized, s.do("POST", "/auth/login", "", map[string]string{"email": lee, "password": "wrong"}).Status)
	require.Equal(t, http.StatusUnauthorized, s.do("POST", "/auth/login", "", map[string]string{"email": "nobody@x.example", "password": "x"}).Status)

	require.Equal(t, http.StatusNoContent, s.do("POST", "/auth/logout", tok, nil).Status)
	r := s.do("GET", "/me", tok, nil)
	require.Equal(t, http.StatusUnauthorized, r.Status)
	require.Equal(t, "signed_out", r.str("error", "code"))

	idle := s.login(lee)
	require.NoError(t, s.db.Gorm().Model(&store.Session{}).Where("revoked_at IS NULL").Update("last_seen_at", time.Now().Add(-31*time.Minute)).Error)
	require.Equal(t, "session_idle", s.do("GET", "/me", idle, nil).str("error", "code"))
	expired := s.login(lee)
	require.NoError(t, s.db.Gorm().Model(&store.Session{}).Where("revoked_at IS NULL").Update("expires_at", time.Now().Add(-time.Minute)).Error)
	require.Equal(t, "session_expired", s.do("GET", "/me", expired, nil).str("error", "code"))

	// Only admins and owners read the audit trail.
	require.Equal(t, http.StatusForbidden, s.do("GET", "/audit", s.login(lee), nil).Status)
	audit := s.do("GET", "/audit", s.login(admin), nil)
	require.Equal(t, http.StatusOK, audit.Status, audit.Raw)
}

func TestLoginIsRateLimited(t *testing.T) {
	e := testenv.Start(t)
	s := startAPI(t, e, func(d *api.Deps) { d.LoginRate = 0.1 })
	codes := map[int]int{}
	for i := 0; i < 8; i++ {
		codes[s.do("POST", "/auth/login", "", map[string]string{"email": lee, "password": "wrong"}).Status]++
	}
	require.Equal(t, 5, codes[http.StatusUnauthorized], "the burst")
	require.Equal(t, 3, codes[http.StatusTooManyRequests])
}

// Check-ins from one address come in bursts of 10 at the default rate, and
// a higher rate allows one second's worth at once (a clinic's kiosk, a test
// or a benchmark from one address); bad ones count too, and change nothing.
func TestCheckInIsRateLimited(t *testing.T) {
	e := testenv.Start(t)
	noConsent := map[string]any{"name": "Pat Hurry", "consent": false}
	codes := func(s *service, n int) map[int]int {
		out := map[int]int{}
		for i := 0; i < n; i++ {
			out[s.do("POST", "/checkin/dr-lee", "", noConsent).Status]++
		}
		return out
	}
	byDefault := codes(startAPI(t, e, func(d *api.Deps) { d.CheckInRate = 0 }), 14)
	require.LessOrEqual(t, byDefault[http.StatusBadRequest], 11, "%v", byDefault)
	require.GreaterOrEqual(t, byDefault[http.StatusTooManyRequests], 3, "%v", byDefault)

	fast := codes(startAPI(t, e, func(d *api.Deps) { d.CheckInRate = 40 }), 40)
	require.Equal(t, map[int]int{http.StatusBadRequest: 40}, fast, "one second's worth at once")
	var visits int64
	require.NoError(t, e.DB.Gorm().Model(&store.Visit{}).Count(&visits).Error)
	require.Zero(t, visits)
}

func TestTransferToARoomWithNobodyOnline(t *testing.T) {
	s := newService(t)
	leeTok := s.login(lee)
	visit, _ := s.checkIn("dr-lee", "Pat Alone")
	r := s.do("POST", "/visits/"+visit+"/transfer", leeTok, map[string]string{"targetRoomId": s.roomID("riverside-urgent")})
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	require.Equal(t, false, r.Body["targetOnline"])
	require.Contains(t, r.str("warning"), "Nobody is online in Urgent Care")
}

func TestOpenAPIDocumentMatchesTheRouter(t *testing.T) {
	raw, err := os.ReadFile("openapi.json")
	require.NoError(t, err)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3."))
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" /api/v1"+path] = true
		}
	}
	routed := map[string]bool{}
	for _, r := range api.NewRouter(api.Deps{}).Routes() {
		if !strings.HasPrefix(r.Path, "/api/v1/") {
			continue
		}
		path := r.Path
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, ":") {
				path = strings.Replace(path, seg, "{"+seg[1:]+"}", 1)
			}
		}
		routed[r.Method+" "+path] = true
	}
	require.Equal(t, documented, routed)
}

func TestLogsCarryRequestIDsAndNoPatientData(t *testing.T) {
	e := testenv.Start(t)
	e.StartWorker(nil)
	var logs syncBuffer
	s := startAPI(t, e, func(d *api.Deps) { d.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	leeTok := s.login(lee)
	visit, _ := s.checkIn("dr-lee", "Quintessa Marlowe-Vance")
	s.do("GET", "/visits/"+visit, leeTok, nil)
	s.do("POST", "/visits/"+visit+"/transfer", leeTok, map[string]string{"targetRoomId": s.roomID("dr-patel"), "note": "Quintessa allergic"})
	s.do("POST", "/visits/"+visit+"/transfer", leeTok, `{"targetRoomId": "Quintessa"`)
	out := logs.String()
	require.Contains(t, out, `"request_id"`)
	require.Contains(t, out, `"route":"/api/v1/visits/:id/transfer"`)
	require.NotContains(t, out, "Quintessa")
	require.NotContains(t, out, "Marlowe")
	require.NotContains(t, out, "hs_", "no session token in the logs")
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A waiting patient sees their place in line (by check-in time), which moves
// up as those ahead are admitted; the clinic sets when a long wait stands
// out on the cards, within bounds.
func TestWaitInformation(t *testing.T) {
	s := newService(t)
	first, _ := s.checkIn("dr-lee", "Pat First")
	second, secondTok := s.checkIn("dr-lee", "Pat Second")
	otherID, otherTok := s.checkIn("dr-patel", "Pat Elsewhere")
	require.EqualValues(t, 2, s.do("GET", "/visits/"+second, secondTok, nil).Body["visit"].(map[string]any)["position"])
	other := s.do("GET", "/visits/"+otherID, otherTok, nil)
	require.EqualValues(t, 1, other.Body["visit"].(map[string]any)["position"], "another room is another line")
	leeTok := s.login(lee)
	require.Equal(t, http.StatusOK, s.do("POST", "/visits/"+first+"/admit", leeTok, nil).Status)
	require.EqualValues(t, 1, s.do("GET", "/visits/"+second, secondTok, nil).Body["visit"].(map[string]any)["position"])

	adminTok := s.login(admin)
	require.EqualValues(t, 15, s.do("GET", "/me", leeTok, nil).Body["clinic"].(map[string]any)["waitAlertMinutes"], "the default")
	require.Equal(t, http.StatusForbidden, s.do("PUT", "/clinic/waiting", leeTok, map[string]int{"waitAlertMinutes": 5}).Status, "a member may not")
	for _, bad := range []int{0, 241} {
		require.Equal(t, http.StatusBadRequest, s.do("PUT", "/clinic/waiting", adminTok, map[string]int{"waitAlertMinutes": bad}).Status)
	}
	r := s.do("PUT", "/clinic/waiting", adminTok, map[string]int{"waitAlertMinutes": 5})
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	require.EqualValues(t, 5, s.do("GET", "/me", leeTok, nil).Body["clinic"].(map[string]any)["waitAlertMinutes"])
}

// Back to the waiting room over HTTP: the patient is told and waits again;
// a provider without access to the room, and a hold of a waiting patient,
// change nothing.
func TestHoldOverHTTP(t *testing.T) {
	s := newService(t)
	visit, patientTok := s.checkIn("dr-lee", "Pat Held")
	leeTok, patelTok := s.login(lee), s.login(patel)
	events := s.stream(patientTok, "")
	require.Equal(t, http.StatusConflict, s.do("POST", "/visits/"+visit+"/hold", leeTok, nil).Status, "not in a call")
	require.Equal(t, http.StatusOK, s.do("POST", "/visits/"+visit+"/admit", leeTok, nil).Status)
	require.Equal(t, http.StatusForbidden, s.do("POST", "/visits/"+visit+"/hold", patelTok, nil).Status)
	r := s.do("POST", "/visits/"+visit+"/hold", leeTok, nil)
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	require.Equal(t, "Pat Held is back in the waiting room", r.str("message"))
	require.Equal(t, true, r.Body["callEnded"])
	held := events.next(t, "visit.held")
	require.Equal(t, "Dr. Maya Lee has put you back in the waiting room. Please wait here.", held.Data["message"])
	me := s.do("GET", "/visits/"+visit, patientTok, nil)
	require.Equal(t, "waiting", me.str("visit", "state"))
	require.EqualValues(t, 1, me.Body["visit"].(map[string]any)["position"])
}
