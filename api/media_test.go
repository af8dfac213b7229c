package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/api"
	"github.com/handoff-telehealth/handoff/internal/mediatest"
	"github.com/handoff-telehealth/handoff/internal/testenv"
)

// dialMedia opens a media session with the tokens the API hands out.
func (s *service) dialMedia(t *testing.T, token string, tag byte, callID string) *mediatest.Peer {
	path := "/media/session"
	if callID != "" {
		path += "?callId=" + callID
	}
	r := s.do("GET", path, token, nil)
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	p := mediatest.Dial(t, r.str("url"), r.str("sessionToken"), r.str("participant"), tag)
	if j := r.str("joinToken"); j != "" {
		p.Join(j)
	}
	return p
}

func (s *service) joinMedia(t *testing.T, p *mediatest.Peer, token, callID string) {
	r := s.do("GET", "/media/session?callId="+callID, token, nil)
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	p.Join(r.str("joinToken"))
}

func TestAdmitAndTransferMoveTheMedia(t *testing.T) {
	e := testenv.Start(t)
	e.StartWorker(nil)
	mediaSrv := httptest.NewServer(http.HandlerFunc(e.Calls.ServeSignaling))
	t.Cleanup(mediaSrv.Close)
	s := startAPI(t, e, func(d *api.Deps) { d.MediaURL = "ws" + strings.TrimPrefix(mediaSrv.URL, "http") })
	leeTok, patelTok := s.login(lee), s.login(patel)
	visit, patientTok := s.checkIn("dr-lee", "Pat Media")

	// The patient connects from the waiting room: connected, nothing flows.
	patient := s.dialMedia(t, patientTok, 'P', "")
	leeMedia := s.dialMedia(t, leeTok, 'L', "")
	patelMedia := s.dialMedia(t, patelTok, 'T', "")

	ad := s.do("POST", "/visits/"+visit+"/admit", leeTok, nil)
	require.Equal(t, http.StatusOK, ad.Status, ad.Raw)
	callID := ad.str("call", "id")
	leeMedia.Join(ad.Body["media"].(map[string]any)["joinToken"].(string))
	s.joinMedia(t, patient, patientTok, callID)
	leeMedia.ReceivesFrom(t, patient)
	patient.ReceivesFrom(t, leeMedia)

	// Transfer during the 1:1 call: the call ends for Dr. Lee, the patient's
	// media stops reaching her, and nothing of the old call reaches the patient.
	tr := s.do("POST", "/visits/"+visit+"/transfer", leeTok, map[string]string{"targetRoomId": s.roomID("dr-patel")})
	require.Equal(t, http.StatusOK, tr.Status, tr.Raw)
	time.Sleep(150 * time.Millisecond)
	heardByLee, heardByPatient := leeMedia.Total('P'), patient.Total('L')
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, heardByLee, leeMedia.Total('P'))
	require.Equal(t, heardByPatient, patient.Total('L'))
	// An old join token for the old call is refused.
	r := s.do("GET", "/media/session?callId="+callID, patientTok, nil)
	require.Equal(t, http.StatusForbidden, r.Status, "the API will not mint a token for a call the patient left")

	// Dr. Patel admits: the patient's same session joins his call, no reload.
	ad = s.do("POST", "/visits/"+visit+"/admit", patelTok, nil)
	require.Equal(t, http.StatusOK, ad.Status, ad.Raw)
	newCall := ad.str("call", "id")
	patelMedia.Join(ad.Body["media"].(map[string]any)["joinToken"].(string))
	s.joinMedia(t, patient, patientTok, newCall)
	patelMedia.ReceivesFrom(t, patient)
	patient.ReceivesFrom(t, patelMedia)
	require.Eventually(t, func() bool { return len(patelMedia.KeyframesFrom('P')) > 0 }, 5*time.Second, 10*time.Millisecond,
		"Dr. Patel gets a keyframe from the patient")
	for _, p := range []*mediatest.Peer{patient, leeMedia, patelMedia} {
		p.NoErrors(t)
	}
}
