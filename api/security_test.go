package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/api"
	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
	"github.com/handoff-telehealth/handoff/internal/testkit/testenv"
	"github.com/handoff-telehealth/handoff/metrics"
	"github.com/handoff-telehealth/handoff/store"
)

// Rate limits hold against a forged X-Forwarded-For: the connection's
// address is the client's unless it is a trusted proxy; behind one, each
// client is its own bucket, and one client is still one bucket.
func TestForgedForwardingHeadersDoNotBypassRateLimits(t *testing.T) {
	e := testenv.Start(t)
	e.StartWorker(nil)
	slow := func(d *api.Deps) { d.LoginRate = 1 } // bursts of 5
	// Guesses at addresses without an account: only the address's limit
	// applies (an account's own back-off is TestWrongPasswordsMakeTheAccountWait).
	guess := func(s *service, from string, i int) int {
		r := s.do("POST", "/auth/login", "", map[string]string{"email": fmt.Sprintf("nobody-%d@riverside.example", i), "password": "a wrong guess"},
			"X-Forwarded-For", from, "X-Real-IP", from)
		return r.Status
	}
	count429 := func(s *service, from func(i int) string) int {
		n := 0
		for i := 0; i < 12; i++ {
			if guess(s, from(i), i) == http.StatusTooManyRequests {
				n++
			}
		}
		return n
	}
	direct := startAPI(t, e, slow)
	require.GreaterOrEqual(t, count429(direct, func(i int) string { return "203.0.113." + string(rune('1'+i%9)) }), 6,
		"a new forged address per guess gets no new bucket")

	proxied := startAPI(t, e, func(d *api.Deps) { slow(d); d.TrustedProxies = []string{"127.0.0.1"} })
	require.Zero(t, count429(proxied, func(i int) string { return "198.51.100." + string(rune('1'+i%9)) + "0" }), "behind a trusted proxy, clients are told apart")
	require.GreaterOrEqual(t, count429(proxied, func(int) string { return "198.51.100.200" }), 6, "one client is still one bucket")
}

// API answers say what they are and stay out of caches; an oversized
// Idempotency-Key is a 400 on every route that takes one, and changes
// nothing; pages forbid foreign bases and form targets.
func TestHeadersAndOversizedKeys(t *testing.T) {
	s := newService(t)
	leeTok := s.login(lee)
	visit, patientTok := s.checkIn("dr-lee", "Pat Headers")
	r := s.do("GET", "/me", leeTok, nil)
	require.Equal(t, "nosniff", r.header("X-Content-Type-Options"))
	require.Equal(t, "no-store", r.header("Cache-Control"))

	huge := strings.Repeat("k", 20<<10)
	for _, c := range []struct{ method, path, token string }{
		{"POST", "/visits/" + visit + "/admit", leeTok},
		{"POST", "/visits/" + visit + "/transfer", leeTok},
		{"POST", "/visits/" + visit + "/end", leeTok},
		{"POST", "/visits/" + visit + "/leave", patientTok},
		{"POST", "/media/rejoin", patientTok},
	} {
		r := s.do(c.method, c.path, c.token, map[string]string{"targetRoomId": s.roomID("dr-patel")}, "Idempotency-Key", huge)
		require.Equal(t, http.StatusBadRequest, r.Status, "%s %s: %s", c.method, c.path, r.Raw)
		require.Contains(t, r.str("error", "message"), "Idempotency-Key")
	}
	require.Equal(t, store.VisitWaiting, s.env.Visit(visit).State, "nothing happened to the visit")

	resp, err := http.Get(s.url + "/c/dr-lee")
	require.NoError(t, err)
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	require.Contains(t, csp, "base-uri 'none'")
	require.Contains(t, csp, "form-action 'self'")
	require.Contains(t, csp, "connect-src 'self' ws://media.invalid;", "WebSockets to this origin and the media node only")
	require.NotContains(t, csp, " ws: ")
}

// A name that hides what it is (right-to-left override, zero-width
// characters) is refused at check-in, and nothing waits.
func TestNamesWithInvisibleFormatting(t *testing.T) {
	s := newService(t)
	for _, name := range []string{"Pat \u202eredaS", "Pat\u200bient", "\ufeffPat"} {
		r := s.do("POST", "/checkin/dr-lee", "", map[string]any{"name": name, "consent": true})
		require.Equal(t, http.StatusBadRequest, r.Status, "%q: %s", name, r.Raw)
	}
	leeTok := s.login(lee)
	w := s.do("GET", "/rooms/"+s.roomID("dr-lee")+"/waiting", leeTok, nil)
	require.Empty(t, w.Body["waiting"])
}

// Signing out ends the live stream (it is told why) and the provider's
// presence: the room no longer lists them online.
func TestSigningOutEndsTheStream(t *testing.T) {
	s := newService(t)
	patelTok, leeTok := s.login(patel), s.login(lee)
	events := s.stream(patelTok, "")
	online := func() bool {
		for _, r := range s.do("GET", "/rooms", leeTok, nil).Body["rooms"].([]any) {
			room := r.(map[string]any)
			if room["id"] == s.roomID("dr-patel") {
				return len(room["online"].([]any)) > 0
			}
		}
		return false
	}
	require.True(t, online())
	require.Equal(t, http.StatusNoContent, s.do("POST", "/auth/logout", patelTok, nil).Status)
	require.Equal(t, "signed_out", events.next(t, "session.ended").Data["reason"])
	select {
	case _, open := <-events.events:
		require.False(t, open, "the stream closed")
	case <-time.After(5 * time.Second):
		t.Fatal("the stream stayed open")
	}
	require.Eventually(t, func() bool { return !online() }, 5*time.Second, 100*time.Millisecond)
}

// One provider holds at most 10 live streams (over all their sessions);
// the 11th is a 429 that says why, and closing one frees its place.
func TestStreamsPerPersonAreCapped(t *testing.T) {
	s := newService(t)
	a, b := s.login(lee), s.login(lee)
	var open []*sse
	for i := 0; i < 10; i++ {
		tok := a
		if i%2 == 1 {
			tok = b
		}
		open = append(open, s.stream(tok, ""))
	}
	r := s.do("GET", "/events", b, nil)
	require.Equal(t, http.StatusTooManyRequests, r.Status, r.Raw)
	require.Equal(t, "too_many_streams", r.str("error", "code"))
	require.Equal(t, http.StatusOK, s.do("GET", "/me", a, nil).Status, "other requests go on")
	open[0].cancel()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/api/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+a)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 5*time.Second, 100*time.Millisecond, "a closed stream frees its place")
}

// Wrong passwords in a row make the account wait, even for the right
// password, for a while that grows and then ends by itself; each is an
// audit row with the address; the next sign-in is told how many there were.
func TestWrongPasswordsMakeTheAccountWait(t *testing.T) {
	s := newService(t)
	try := func(pw string) response {
		return s.do("POST", "/auth/login", "", map[string]string{"email": patel, "password": pw})
	}
	for i := 0; i < 5; i++ {
		require.Equal(t, http.StatusUnauthorized, try("guess-"+string(rune('a'+i))).Status)
	}
	r := try(store.DemoPassword)
	require.Equal(t, http.StatusTooManyRequests, r.Status, "the right password waits too: %s", r.Raw)
	require.Equal(t, "sign_in_waiting", r.str("error", "code"))
	waitFor := func(r response) int { n, _ := strconv.Atoi(r.header("Retry-After")); return n }
	require.InDelta(t, 28, waitFor(r), 2, "about 30 s")

	// The wait ends by itself (here: as if 31 s had passed).
	require.NoError(t, s.db.Gorm().Exec(`UPDATE users SET sign_in_wait_until = now() - interval '1 second' WHERE email = ?`, patel).Error)
	r = try("one more guess")
	require.Equal(t, http.StatusUnauthorized, r.Status)
	r = try(store.DemoPassword)
	require.Equal(t, http.StatusTooManyRequests, r.Status, "a sixth failure waits longer")
	require.InDelta(t, 58, waitFor(r), 2, "about a minute")
	require.NoError(t, s.db.Gorm().Exec(`UPDATE users SET sign_in_wait_until = now() - interval '1 second' WHERE email = ?`, patel).Error)
	r = try(store.DemoPassword)
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	require.EqualValues(t, 6, r.Body["failedSignIns"], "the person is told")
	again := try(store.DemoPassword)
	require.EqualValues(t, 0, again.Body["failedSignIns"], "once")

	audit := s.do("GET", "/audit?action=auth.&actorId="+s.env.User(patel).ID, s.login(admin), nil)
	var failed, signedIn int
	for _, row := range audit.Body["audit"].([]any) {
		row := row.(map[string]any)
		require.Equal(t, "127.0.0.1", row["address"])
		switch row["action"] {
		case "auth.sign_in_failed":
			failed++
		case "auth.signed_in":
			signedIn++
		}
	}
	require.Equal(t, 6, failed)
	require.Equal(t, 2, signedIn)
}

// Ending visits just as their patients' pages close (the stream's end
// signals the visit at the same moment) answers no 5xx: a workflow not
// ready for the update is retried within the request.
func TestEndingAsThePageClosesIsNeverA5xx(t *testing.T) {
	s := newService(t)
	leeTok := s.login(lee)
	statuses := map[int]int{}
	for i := 0; i < 20; i++ {
		visit, patientTok := s.checkIn("dr-lee", fmt.Sprintf("Pat Closing %d", i))
		page := s.stream(patientTok, "")
		time.Sleep(20 * time.Millisecond) // the page is open: the visit knows its patient is here
		done := make(chan int, 2)
		go func() { done <- s.do("POST", "/visits/"+visit+"/end", leeTok, nil).Status }()
		go func() { done <- s.do("POST", "/visits/"+visit+"/leave", patientTok, nil).Status }() // the page's goodbye
		page.cancel()
		statuses[<-done]++
		statuses[<-done]++
		require.Equal(t, store.VisitEnded, s.env.Visit(visit).State)
	}
	for status, n := range statuses {
		require.Less(t, status, 500, "%d answers %d: %v", n, status, statuses)
	}
}

// An open dashboard nobody uses is signed out like any idle session: its
// stream is told and closes.
func TestAnIdleSessionEndsItsStream(t *testing.T) {
	s := newService(t)
	tok := s.login(lee)
	events := s.stream(tok, "")
	require.NoError(t, s.db.Gorm().Model(&store.Session{}).Where("revoked_at IS NULL").Update("last_seen_at", time.Now().Add(-31*time.Minute)).Error)
	require.Equal(t, "idle", events.next(t, "session.ended").Data["reason"])
	require.Equal(t, "session_idle", s.do("GET", "/me", tok, nil).str("error", "code"))
}

// A provider's stream resumes no further back than a recent window: an old
// (or zero) Last-Event-ID does not replay the room's history, ended visits'
// names and all; a recent one resumes without loss.
func TestResumingDoesNotReplayOldHistory(t *testing.T) {
	s := newService(t)
	leeTok := s.login(lee)
	s.checkIn("dr-lee", "Pat From Last Week")
	require.NoError(t, s.db.Gorm().Exec(`UPDATE events SET created_at = now() - interval '7 days'`).Error)
	recent := s.stream(leeTok, "")
	s.checkIn("dr-lee", "Pat Recent")
	mark := recent.next(t, "visit.checked_in")
	s.checkIn("dr-lee", "Pat After The Mark")

	replay := s.stream(leeTok, "0")
	got := replay.next(t, "visit.checked_in")
	require.Equal(t, "Pat Recent", got.Data["patientName"], "the first event replayed is within the window")
	resumed := s.stream(leeTok, mark.ID)
	require.Equal(t, "Pat After The Mark", resumed.next(t, "visit.checked_in").Data["patientName"], "a recent id resumes after it")
}

// What providers reach is in the audit trail: streams opened, waiting rooms
// viewed, apps opened and closed, refusals (without the id asked for),
// each with who and from where.
func TestAccessIsAudited(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		e := testenv.StartOn(t, dsn)
		e.StartWorker(nil)
		s := startAPI(t, e, nil)
		leeTok, adminTok := s.login(lee), s.login(admin)
		s.stream(leeTok, "")
		require.Equal(t, http.StatusOK, s.do("GET", "/rooms/"+s.roomID("dr-lee")+"/waiting", leeTok, nil).Status)
		visit, _ := s.checkIn("dr-lee", "Pat Audited")
		call := s.do("POST", "/visits/"+visit+"/admit", leeTok, nil).str("call", "id")
		app := s.do("POST", "/calls/"+call+"/apps", leeTok, map[string]string{"app": "notes", "data": "private words"})
		require.Equal(t, http.StatusNoContent, s.do("DELETE", "/calls/"+call+"/apps/"+app.str("app", "id"), leeTok, nil).Status)
		require.Equal(t, http.StatusForbidden, s.do("GET", "/rooms/"+s.roomID("dr-patel")+"/waiting", leeTok, nil).Status)

		actions := map[string]int{}
		for _, kind := range []string{"access.", "app."} {
			audit := s.do("GET", "/audit?action="+kind+"&actorId="+s.env.User(lee).ID, adminTok, nil)
			for _, row := range audit.Body["audit"].([]any) {
				row := row.(map[string]any)
				require.Equal(t, "127.0.0.1", row["address"])
				require.NotContains(t, row["detail"], "private words", "an app's data is not in the trail")
				require.NotContains(t, row["detail"], s.roomID("dr-patel"), "nor the id refused")
				actions[row["action"].(string)]++
			}
		}
		require.Equal(t, 1, actions["access.stream_opened"], actions)
		require.Equal(t, 1, actions["access.waiting_room_viewed"], actions)
		require.Equal(t, 1, actions["access.denied"], actions)
		require.Equal(t, 1, actions["app.opened"], actions)
		require.Equal(t, 1, actions["app.closed"], actions)
	})
}

// Over HTTPS the API and pages tell browsers to keep to HTTPS (HSTS); over
// plain HTTP (behind a proxy) they do not claim it.
func TestHTTPSAnswersCarryHSTS(t *testing.T) {
	e := testenv.Start(t)
	deps := api.Deps{DB: e.DB, Temporal: e.Client, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: metrics.New()}
	secure := httptest.NewUnstartedServer(api.NewRouter(deps))
	secure.StartTLS()
	t.Cleanup(secure.Close)
	for _, path := range []string{"/healthz", "/api/v1/signup", "/c/dr-lee"} {
		resp, err := secure.Client().Get(secure.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, "max-age=31536000; includeSubDomains", resp.Header.Get("Strict-Transport-Security"), path)
	}
	plain := httptest.NewServer(api.NewRouter(deps))
	t.Cleanup(plain.Close)
	resp, err := http.Get(plain.URL + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Empty(t, resp.Header.Get("Strict-Transport-Security"))
}
