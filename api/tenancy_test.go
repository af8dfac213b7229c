package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/store"
)

// Every route, every kind of caller that must not get in: the expected
// status, and nothing changes.
func TestTenancyMatrix(t *testing.T) {
	s := newService(t)
	leeTok := s.login(lee)
	visit, _ := s.checkIn("dr-lee", "Pat Tenant")
	inCall, _ := s.checkIn("dr-lee", "Pat Caller")
	call := s.do("POST", "/visits/"+inCall+"/admit", leeTok, nil)
	require.Equal(t, http.StatusOK, call.Status, call.Raw)
	callID := call.str("call", "id")
	app := s.do("POST", "/calls/"+callID+"/apps", leeTok, map[string]string{"app": "payment", "data": "card on file"})
	require.Equal(t, http.StatusCreated, app.Status, app.Raw)
	appID := app.str("app", "id")
	_, otherPatient := s.checkIn("dr-patel", "Pat Elsewhere")

	expired := s.login(lee)
	require.NoError(t, s.db.Gorm().Exec(`UPDATE sessions SET expires_at = now() - interval '1 minute' WHERE revoked_at IS NULL`).Error)
	leeTok = s.login(lee) // still valid, used below to check nothing changed
	callers := map[string]string{
		"no token":           "",
		"expired session":    expired,
		"other visit":        otherPatient,
		"other clinic":       s.login(grant),
		"staff, not my room": s.login(frontDsk),
		"free-plan clinic":   s.login(cho),
	}
	type route struct{ method, path string }
	routes := []route{
		{"GET", "/rooms/" + s.roomID("dr-lee") + "/waiting"},
		{"GET", "/visits/" + visit},
		{"POST", "/visits/" + visit + "/admit"},
		{"POST", "/visits/" + visit + "/transfer"},
		{"POST", "/visits/" + visit + "/leave"},
		{"POST", "/visits/" + visit + "/end"},
		{"POST", "/calls/" + callID + "/apps"},
		{"DELETE", "/calls/" + callID + "/apps/" + appID},
		{"GET", "/audit"},
		{"GET", "/media/session?callId=" + callID},
		{"POST", "/media/rejoin"},
	}
	// want[caller][route index] is the status; 401 for no/expired tokens.
	want := map[string][]int{
		"other visit":        {401, 404, 401, 401, 404, 401, 401, 401, 401, 403, 403},
		"other clinic":       {404, 404, 404, 404, 401, 404, 404, 404, 403, 404, 404},
		"staff, not my room": {403, 403, 403, 403, 401, 403, 403, 403, 403, 403, 403},
		"free-plan clinic":   {404, 404, 404, 404, 401, 404, 404, 404, 403, 404, 404},
	}
	bodies := map[string]any{
		"/visits/" + visit + "/transfer": map[string]string{"targetRoomId": s.roomID("dr-patel")},
		"/calls/" + callID + "/apps":     map[string]string{"app": "notes"},
		"/media/rejoin":                  map[string]string{"callId": callID},
	}
	// Refusals leave no trace of success, only access.denied rows.
	countAudit := func() (done, denied int64) {
		s.db.Gorm().Model(&store.AuditEvent{}).Where("action NOT LIKE 'access.%'").Count(&done)
		s.db.Gorm().Model(&store.AuditEvent{}).Where("action = 'access.denied'").Count(&denied)
		return done, denied
	}
	auditBefore, deniedBefore := countAudit()
	cases := 0
	for name, token := range callers {
		for i, r := range routes {
			expect := 401
			if w, ok := want[name]; ok {
				expect = w[i]
			}
			got := s.do(r.method, r.path, token, bodies[r.path])
			require.Equal(t, expect, got.Status, "%s %s as %s: %s", r.method, r.path, name, got.Raw)
			require.NotContains(t, got.Raw, "Pat Tenant", "no patient data leaks to %s", name)
			cases++
		}
	}
	t.Logf("%d tenancy cases", cases)

	var v store.Visit
	require.NoError(t, s.db.Gorm().Take(&v, "id = ?", visit).Error)
	require.Equal(t, store.VisitWaiting, v.State)
	require.Equal(t, s.roomID("dr-lee"), v.RoomID)
	var a store.AppSession
	require.NoError(t, s.db.Gorm().Take(&a, "id = ?", appID).Error)
	require.Nil(t, a.ClosedAt, "the app is still open")
	auditAfter, deniedAfter := countAudit()
	require.Equal(t, auditBefore, auditAfter, "refused requests leave no trace of success")
	require.Greater(t, deniedAfter, deniedBefore+20, "signed-in callers' refusals are audited as denied")
	var denied []store.AuditEvent
	require.NoError(t, s.db.Gorm().Where("action = 'access.denied'").Find(&denied).Error)
	for _, d := range denied {
		require.NotContains(t, d.Detail, visit, "the id asked for is not recorded")
		require.NotContains(t, d.Detail, callID)
		require.Regexp(t, `^(GET|POST|DELETE) /api/v1/\S+: (403|404)$`, d.Detail)
	}
	require.Equal(t, http.StatusOK, s.do("GET", "/visits/"+visit, leeTok, nil).Status)
}
