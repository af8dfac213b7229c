package api_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/api"
	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/internal/testkit/mediatest"
	"github.com/handoff-telehealth/handoff/internal/testkit/testenv"
	"github.com/handoff-telehealth/handoff/store"
)

// guestLinkToken is the token in a guest link's fragment.
func guestLinkToken(t *testing.T, link string) string {
	_, tok, ok := strings.Cut(link, "/g#")
	require.True(t, ok, link)
	return tok
}

// guestArrives uses a guest link: the guest's token and id.
func (s *service) guestArrives(t *testing.T, link, name string) (string, string) {
	r := s.do("POST", "/guest-links/"+guestLinkToken(t, link), "", map[string]string{"name": name})
	require.Equal(t, http.StatusCreated, r.Status, r.Raw)
	return r.str("token"), r.str("guest", "id")
}

func (s *service) invite(t *testing.T, visit, token string) response {
	r := s.do("POST", "/visits/"+visit+"/guests", token, nil)
	require.Equal(t, http.StatusCreated, r.Status, r.Raw)
	return r
}

func mediaService(t *testing.T) (*testenv.Env, *service) {
	e := testenv.Start(t)
	e.StartWorker(nil)
	mediaSrv := httptest.NewServer(http.HandlerFunc(e.Calls.ServeSignaling))
	t.Cleanup(mediaSrv.Close)
	return e, startAPI(t, e, func(d *api.Deps) { d.MediaURL = "ws" + strings.TrimPrefix(mediaSrv.URL, "http") })
}

// A guest comes in by a single-use link, waits in the lobby seeing nothing
// of the clinic, is let in, and then the provider and the patient receive
// the guest's media and the guest theirs; the guest writes in the call's
// chat; removed, their media stops and their token is dead.
func TestGuestJoinsByLinkAndIsRemoved(t *testing.T) {
	e, s := mediaService(t)
	leeTok := s.login(lee)
	visit, patientTok := s.checkIn("dr-lee", "Pat Guest")
	patientEvents := s.stream(patientTok, "")
	patient := s.dialMedia(t, patientTok, 'P', "")
	leeMedia := s.dialMedia(t, leeTok, 'L', "")

	// No call, no guest.
	r := s.do("POST", "/visits/"+visit+"/guests", leeTok, nil)
	require.Equal(t, http.StatusConflict, r.Status, r.Raw)

	ad := s.do("POST", "/visits/"+visit+"/admit", leeTok, nil)
	require.Equal(t, http.StatusOK, ad.Status, ad.Raw)
	callID := ad.str("call", "id")
	leeMedia.Join(ad.Body["media"].(map[string]any)["joinToken"].(string))
	s.joinMedia(t, patient, patientTok, callID)

	inv := s.invite(t, visit, leeTok)
	link := inv.str("link")
	require.True(t, strings.HasPrefix(link, s.url+"/g#hl_"), link)
	require.Equal(t, "invited", inv.str("guest", "state"))
	// The link's page says who invited; a forged or mangled link is dead.
	require.Equal(t, "Dr. Maya Lee", s.do("GET", "/guest-links/"+guestLinkToken(t, link), "", nil).str("invitedBy"))
	require.Equal(t, http.StatusNotFound, s.do("GET", "/guest-links/hl_forged", "", nil).Status)
	// A name is required and checked.
	r = s.do("POST", "/guest-links/"+guestLinkToken(t, link), "", map[string]string{"name": "  "})
	require.Equal(t, http.StatusBadRequest, r.Status, r.Raw)
	guestTok, guestID := s.guestArrives(t, link, "Ana Interpreter")
	// The link works once.
	r = s.do("POST", "/guest-links/"+guestLinkToken(t, link), "", map[string]string{"name": "Someone Else"})
	require.Equal(t, http.StatusConflict, r.Status, r.Raw)
	require.Contains(t, r.Raw, "link_used")

	// In the lobby the guest sees themself and nothing else of the clinic.
	me := s.do("GET", "/guest", guestTok, nil)
	require.Equal(t, http.StatusOK, me.Status, me.Raw)
	require.Equal(t, "waiting", me.str("guest", "state"))
	require.Equal(t, "Dr. Maya Lee", me.str("invitedBy"))
	for _, path := range []string{"/rooms", "/visits/" + visit, "/visits/" + visit + "/messages", "/events", "/me", "/rooms/" + s.roomID("dr-lee") + "/waiting"} {
		r := s.do("GET", path, guestTok, nil)
		require.Equal(t, http.StatusUnauthorized, r.Status, "%s: %s", path, r.Raw)
	}
	require.Equal(t, http.StatusUnauthorized, s.do("POST", "/visits/"+visit+"/messages", guestTok, map[string]string{"text": "hi"}).Status)
	require.Empty(t, s.do("GET", "/media/session", guestTok, nil).str("joinToken"), "no join token before being let in")
	r = s.do("POST", "/guest/messages", guestTok, map[string]string{"text": "hello?"})
	require.Equal(t, http.StatusConflict, r.Status, r.Raw)
	guest := s.dialMedia(t, guestTok, 'G', "")

	// Dr. Lee sees the guest waiting on the card and lets them in.
	card := s.do("GET", "/visits/"+visit, leeTok, nil)
	guests := card.Body["visit"].(map[string]any)["guests"].([]any)
	require.Len(t, guests, 1)
	require.Equal(t, "Ana Interpreter", guests[0].(map[string]any)["name"])
	require.Equal(t, "waiting", guests[0].(map[string]any)["state"])
	r = s.do("POST", "/visits/"+visit+"/guests/"+guestID+"/admit", leeTok, nil)
	require.Equal(t, http.StatusNoContent, r.Status, r.Raw)
	joined := patientEvents.next(t, clinic.EventGuestJoined)
	require.Equal(t, "Ana Interpreter (guest) joined the call", joined.Data["message"])
	s.joinMedia(t, guest, guestTok, callID)
	leeMedia.ReceivesFrom(t, guest)
	patient.ReceivesFrom(t, guest)
	guest.ReceivesFrom(t, leeMedia)
	guest.ReceivesFrom(t, patient)

	// The call's chat: the guest, the provider and the patient read each other.
	r = s.do("POST", "/guest/messages", guestTok, map[string]string{"text": "I will interpret"})
	require.Equal(t, http.StatusCreated, r.Status, r.Raw)
	heard := patientEvents.next(t, clinic.EventMessage)
	require.Equal(t, "I will interpret", heard.Data["text"])
	require.Equal(t, "guest", heard.Data["from"])
	r = s.do("POST", "/visits/"+visit+"/messages", leeTok, map[string]string{"text": "Thank you, Ana"})
	require.Equal(t, http.StatusCreated, r.Status, r.Raw)
	chat := s.do("GET", "/guest/messages", guestTok, nil)
	require.Contains(t, chat.Raw, "Thank you, Ana")
	require.Contains(t, s.do("GET", "/visits/"+visit+"/messages", patientTok, nil).Raw, "I will interpret")

	// Removed: their media stops both ways, their token is dead, and why.
	r = s.do("DELETE", "/visits/"+visit+"/guests/"+guestID, leeTok, nil)
	require.Equal(t, http.StatusNoContent, r.Status, r.Raw)
	time.Sleep(200 * time.Millisecond)
	fromGuest, toGuest := leeMedia.Total('G'), guest.Total('L')
	time.Sleep(600 * time.Millisecond)
	require.Equal(t, fromGuest, leeMedia.Total('G'), "Dr. Lee receives nothing more from the removed guest")
	require.Equal(t, toGuest, guest.Total('L'), "the removed guest receives nothing more")
	gone := s.do("GET", "/guest", guestTok, nil)
	require.Equal(t, http.StatusUnauthorized, gone.Status)
	require.Contains(t, gone.Raw, "removed you from the call")
	require.Equal(t, http.StatusUnauthorized, s.do("GET", "/guest/messages", guestTok, nil).Status)
	patientEvents.next(t, clinic.EventGuestGone)

	// The audit trail says who brought whom in, never what was said.
	var actions []string
	require.NoError(t, e.DB.Gorm().Model(&store.AuditEvent{}).Where("visit_id = ? AND action LIKE 'guest.%'", visit).Order("id").Pluck("action", &actions).Error)
	require.Equal(t, []string{clinic.AuditGuestInvited, clinic.AuditGuestArrived, clinic.AuditGuestAdmitted, clinic.AuditGuestGone}, actions)
	var said int64
	require.NoError(t, e.DB.Gorm().Model(&store.AuditEvent{}).Where("visit_id = ? AND detail LIKE '%interpret%'", visit).Count(&said).Error)
	require.Zero(t, said)
	for _, p := range []*mediatest.Peer{patient, leeMedia, guest} {
		p.NoErrors(t)
	}
}

// A call holds at most 8 people: one provider, one patient and six guests
// (invited ones keep their place); the seventh invitation is refused.
func TestGuestsFillACallToEight(t *testing.T) {
	_, s := mediaService(t)
	leeTok := s.login(lee)
	visit, _ := s.checkIn("dr-lee", "Pat Full")
	ad := s.do("POST", "/visits/"+visit+"/admit", leeTok, nil)
	require.Equal(t, http.StatusOK, ad.Status, ad.Raw)
	for i := 0; i < clinic.MaxCallParticipants-2; i++ {
		inv := s.invite(t, visit, leeTok)
		if i%2 == 0 { // half of them in the call, half still invited
			_, id := s.guestArrives(t, inv.str("link"), fmt.Sprintf("Guest %d", i))
			r := s.do("POST", "/visits/"+visit+"/guests/"+id+"/admit", leeTok, nil)
			require.Equal(t, http.StatusNoContent, r.Status, r.Raw)
		}
	}
	r := s.do("POST", "/visits/"+visit+"/guests", leeTok, nil)
	require.Equal(t, http.StatusConflict, r.Status, r.Raw)
	require.Contains(t, r.Raw, "at most 8")
}

// On a transfer the guests leave with the call, unless the provider sends
// them along: then they wait in the lobby and the receiving provider lets
// them in once the patient is admitted. A hold puts them in the lobby too.
func TestGuestsOnTransferAndHold(t *testing.T) {
	_, s := mediaService(t)
	leeTok, patelTok := s.login(lee), s.login(patel)

	// Without them: the guest's place ends, their page says the call ended.
	visit, _ := s.checkIn("dr-lee", "Pat Alone")
	require.Equal(t, http.StatusOK, s.do("POST", "/visits/"+visit+"/admit", leeTok, nil).Status)
	tok, id := s.guestArrives(t, s.invite(t, visit, leeTok).str("link"), "Sam Family")
	require.Equal(t, http.StatusNoContent, s.do("POST", "/visits/"+visit+"/guests/"+id+"/admit", leeTok, nil).Status)
	tr := s.do("POST", "/visits/"+visit+"/transfer", leeTok, map[string]string{"targetRoomId": s.roomID("dr-patel")})
	require.Equal(t, http.StatusOK, tr.Status, tr.Raw)
	gone := s.do("GET", "/guest", tok, nil)
	require.Equal(t, http.StatusUnauthorized, gone.Status)
	require.Contains(t, gone.Raw, "The call has ended")

	// With them: the guest goes along, waiting, and Dr. Patel lets them in.
	visit, _ = s.checkIn("dr-lee", "Pat Along")
	require.Equal(t, http.StatusOK, s.do("POST", "/visits/"+visit+"/admit", leeTok, nil).Status)
	tok, id = s.guestArrives(t, s.invite(t, visit, leeTok).str("link"), "Kai Interpreter")
	require.Equal(t, http.StatusNoContent, s.do("POST", "/visits/"+visit+"/guests/"+id+"/admit", leeTok, nil).Status)
	tr = s.do("POST", "/visits/"+visit+"/transfer", leeTok, map[string]any{"targetRoomId": s.roomID("dr-patel"), "keepGuests": true})
	require.Equal(t, http.StatusOK, tr.Status, tr.Raw)
	me := s.do("GET", "/guest", tok, nil)
	require.Equal(t, http.StatusOK, me.Status, me.Raw)
	require.Equal(t, "waiting", me.str("guest", "state"))
	require.Empty(t, s.do("GET", "/media/session", tok, nil).str("joinToken"))
	waiting := s.do("GET", "/rooms/"+s.roomID("dr-patel")+"/waiting", patelTok, nil)
	require.Contains(t, waiting.Raw, "Kai Interpreter", "the receiving card shows the guest")
	r := s.do("POST", "/visits/"+visit+"/guests/"+id+"/admit", patelTok, nil)
	require.Equal(t, http.StatusConflict, r.Status, "not before the patient is in a call: %s", r.Raw)
	ad := s.do("POST", "/visits/"+visit+"/admit", patelTok, nil)
	require.Equal(t, http.StatusOK, ad.Status, ad.Raw)
	require.Equal(t, http.StatusNoContent, s.do("POST", "/visits/"+visit+"/guests/"+id+"/admit", patelTok, nil).Status)
	me = s.do("GET", "/guest", tok, nil)
	require.Equal(t, "in_call", me.str("guest", "state"))
	require.Equal(t, ad.str("call", "id"), me.str("guest", "callId"))

	// A hold: back to the lobby with the patient.
	require.Equal(t, http.StatusOK, s.do("POST", "/visits/"+visit+"/hold", patelTok, nil).Status)
	require.Equal(t, "waiting", s.do("GET", "/guest", tok, nil).str("guest", "state"))
	// The visit ends: so does every guest's place.
	require.Equal(t, http.StatusNoContent, s.do("POST", "/visits/"+visit+"/end", patelTok, nil).Status)
	require.Equal(t, http.StatusUnauthorized, s.do("GET", "/guest", tok, nil).Status)
}

// Letting a guest in races a transfer of the patient: whichever the visit
// takes first wins, and either way the guest is not left in a call the
// patient has left: their place ended, and the media node holds no guest.
func TestLettingAGuestInRacesATransfer(t *testing.T) {
	e, s := mediaService(t)
	leeTok := s.login(lee)
	for round := 0; round < 6; round++ {
		visit, _ := s.checkIn("dr-lee", fmt.Sprintf("Pat Race %d", round))
		ad := s.do("POST", "/visits/"+visit+"/admit", leeTok, nil)
		require.Equal(t, http.StatusOK, ad.Status, ad.Raw)
		callID := ad.str("call", "id")
		tok, id := s.guestArrives(t, s.invite(t, visit, leeTok).str("link"), "Racing Guest")
		var wg sync.WaitGroup
		var admitted, transferred response
		wg.Add(2)
		go func() {
			defer wg.Done()
			admitted = s.do("POST", "/visits/"+visit+"/guests/"+id+"/admit", leeTok, nil)
		}()
		go func() {
			defer wg.Done()
			transferred = s.do("POST", "/visits/"+visit+"/transfer", leeTok, map[string]string{"targetRoomId": s.roomID("dr-patel")})
		}()
		wg.Wait()
		// A transfer that completed before the letting-in was read leaves
		// Dr. Lee acting for no room of the patient's: 403, as for any
		// provider of another room.
		require.Contains(t, []int{http.StatusNoContent, http.StatusConflict, http.StatusForbidden}, admitted.Status, admitted.Raw)
		require.Contains(t, []int{http.StatusOK, http.StatusConflict}, transferred.Status, transferred.Raw)
		if admitted.Status == http.StatusForbidden {
			require.Equal(t, http.StatusOK, transferred.Status, "refused for access only once the patient has left Dr. Lee's room")
		}
		if transferred.Status == http.StatusConflict {
			// The guest won: the patient is still in the call, with the guest.
			require.Equal(t, http.StatusNoContent, admitted.Status)
			require.Equal(t, "in_call", s.do("GET", "/guest", tok, nil).str("guest", "state"))
			require.Contains(t, members(e, callID), clinic.GuestParticipant(id))
			continue
		}
		require.Equal(t, "dr-patel", roomSlug(e, e.Visit(visit).RoomID), "round %d", round)
		require.Equal(t, http.StatusUnauthorized, s.do("GET", "/guest", tok, nil).Status, "round %d: the guest left with the call", round)
		require.NotContains(t, members(e, callID), clinic.GuestParticipant(id), "round %d", round)
	}
}

func roomSlug(e *testenv.Env, roomID string) string {
	for _, slug := range []string{"dr-lee", "dr-patel", "riverside-reception"} {
		if e.Room(slug).ID == roomID {
			return slug
		}
	}
	return roomID
}

func members(e *testenv.Env, callID string) []string {
	m, _ := e.Calls.Members(callID)
	return m
}
