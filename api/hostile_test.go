package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHostileRequests(t *testing.T) {
	s := newService(t)
	leeTok := s.login(lee)

	// Injection strings are data: stored and shown as text, never run.
	names := []string{`<script>alert(1)</script>`, `Robert'); DROP TABLE visits;--`, `" OR 1=1 --`, `Zoë 🩺 Ñandú`}
	for _, name := range names {
		s.checkIn("dr-lee", name)
	}
	visit, _ := s.checkIn("dr-lee", "Pat Target")
	note := `</div><img src=x onerror=alert(1)>'; DELETE FROM audit_events;--`
	tr := s.do("POST", "/visits/"+visit+"/transfer", leeTok, map[string]string{"targetRoomId": s.roomID("dr-patel"), "note": note})
	require.Equal(t, http.StatusOK, tr.Status, tr.Raw)
	list := s.do("GET", "/rooms/"+s.roomID("dr-lee")+"/waiting", leeTok, nil)
	require.Equal(t, http.StatusOK, list.Status)
	var got []string
	for _, c := range list.Body["waiting"].([]any) {
		got = append(got, c.(map[string]any)["patientName"].(string))
	}
	require.ElementsMatch(t, names, got, "every name comes back exactly as typed")
	card := s.do("GET", "/visits/"+visit, s.login(patel), nil)
	require.Equal(t, note, card.str("visit", "note"))

	// The pages: their own scripts only, and patient pages never cached.
	resp, err := http.Get(s.url + "/c/dr-lee")
	require.NoError(t, err)
	resp.Body.Close()
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'")
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	require.Equal(t, "no-store", s.do("GET", "/visits/"+visit, leeTok, nil).header("Cache-Control"))

	cases := []struct {
		name, method, path, body string
		status                   int
	}{
		{"invalid UTF-8", "POST", "/checkin/dr-lee", "{\"name\":\"\xff\xfe\",\"consent\":true}", 400},
		{"wrong type", "POST", "/checkin/dr-lee", `{"name":42,"consent":true}`, 400},
		{"unknown field", "POST", "/checkin/dr-lee", `{"name":"A","consent":true,"admin":true}`, 400},
		{"no consent", "POST", "/checkin/dr-lee", `{"name":"A"}`, 400},
		{"control characters", "POST", "/checkin/dr-lee", "{\"name\":\"A\\u0000B\",\"consent\":true}", 400},
		{"blank name", "POST", "/checkin/dr-lee", `{"name":"   ","consent":true}`, 400},
		{"name too long", "POST", "/checkin/dr-lee", `{"name":"` + strings.Repeat("x", 101) + `","consent":true}`, 400},
		{"oversized body", "POST", "/checkin/dr-lee", `{"name":"` + strings.Repeat("x", 70<<10) + `","consent":true}`, 413},
		{"unknown room", "POST", "/checkin/no-such-room", `{"name":"A","consent":true}`, 404},
		{"slug injection", "GET", "/checkin/dr-lee'%20OR%20'1'='1", "", 404},
		{"two JSON values", "POST", "/auth/login", `{"email":"a"}{"email":"b"}`, 400},
		{"not a visit id", "GET", "/visits/../../etc/passwd", "", 404},
	}
	var before int64
	s.db.Gorm().Table("visits").Count(&before)
	for _, c := range cases {
		r := s.do(c.method, c.path, "", c.body)
		if c.path == "/visits/../../etc/passwd" {
			r = s.do(c.method, "/visits/%2e%2e%2fetc", leeTok, nil)
		}
		require.Equal(t, c.status, r.Status, "%s: %s", c.name, r.Raw)
		if r.Status != 404 || strings.HasPrefix(c.path, "/checkin") {
			require.NotEmpty(t, r.str("error", "message"), c.name)
		}
	}
	var after int64
	s.db.Gorm().Table("visits").Count(&after)
	require.Equal(t, before, after, "no refused request created a visit")
}
