package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
	"github.com/handoff-telehealth/handoff/internal/testkit/testenv"
)

// A visit's conversation, on both engines: staff tell a waiting patient
// (or the whole room) they are running late, the patient sees it at once
// and replies; the conversation travels with the patient on a transfer;
// bad messages change nothing; a clinic can turn patients' messages off;
// the audit trail says a message was sent, never what; the text is sealed
// at rest.
func TestMessages(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		e := testenv.StartOn(t, dsn)
		e.StartWorker(nil)
		s := startAPI(t, e, nil)
		visit, patientTok := s.checkIn("dr-lee", "Pat Chat")
		other, _ := s.checkIn("dr-lee", "Pat Other")
		_, strangerTok := s.checkIn("dr-patel", "Pat Stranger")
		leeTok, patelTok, adminTok := s.login(lee), s.login(patel), s.login(admin)
		events := s.stream(patientTok, "")

		late := "Dr. Lee is running 10 minutes late"
		r := s.do("POST", "/visits/"+visit+"/messages", leeTok, map[string]string{"text": late})
		require.Equal(t, http.StatusCreated, r.Status, r.Raw)
		got := events.next(t, "message.sent")
		require.Equal(t, late, got.Data["text"])
		require.Equal(t, "provider", got.Data["from"])
		require.Equal(t, "Dr. Maya Lee", got.Data["senderName"])
		r = s.do("POST", "/visits/"+visit+"/messages", patientTok, map[string]string{"text": "Thank you, I'll wait\nhere"})
		require.Equal(t, http.StatusCreated, r.Status, r.Raw)
		require.Equal(t, "patient", r.str("message", "from"))

		// Nobody else reads or writes it.
		require.Equal(t, http.StatusNotFound, s.do("GET", "/visits/"+visit+"/messages", strangerTok, nil).Status)
		require.Equal(t, http.StatusForbidden, s.do("GET", "/visits/"+visit+"/messages", patelTok, nil).Status)
		for _, bad := range []string{"   ", strings.Repeat("x", 1001), "evil\u202Etxt.exe", "bell\a"} {
			r := s.do("POST", "/visits/"+visit+"/messages", leeTok, map[string]string{"text": bad})
			require.Equal(t, http.StatusBadRequest, r.Status, "%q: %s", bad, r.Raw)
		}

		// The whole room: each waiting patient gets it.
		r = s.do("POST", "/rooms/"+s.roomID("dr-lee")+"/messages", leeTok, map[string]string{"text": "The clinic closes at 5 today"})
		require.Equal(t, http.StatusCreated, r.Status, r.Raw)
		require.EqualValues(t, 2, r.Body["sent"])
		events.nextFor(t, "message.sent", "text", "The clinic closes at 5 today") // after the echo of the patient's own
		list := s.do("GET", "/visits/"+other+"/messages", leeTok, nil)
		require.Len(t, list.Body["messages"].([]any), 1)

		// Transferred: Dr. Patel reads the waiting room's conversation.
		require.Equal(t, http.StatusOK, s.do("POST", "/visits/"+visit+"/transfer", leeTok, map[string]string{"targetRoomId": s.roomID("dr-patel")}).Status)
		conv := s.do("GET", "/visits/"+visit+"/messages", patelTok, nil)
		require.Equal(t, http.StatusOK, conv.Status, conv.Raw)
		var texts []string
		for _, m := range conv.Body["messages"].([]any) {
			texts = append(texts, m.(map[string]any)["text"].(string))
		}
		require.Equal(t, []string{late, "Thank you, I'll wait\nhere", "The clinic closes at 5 today"}, texts)
		room := s.do("GET", "/rooms/"+s.roomID("dr-patel")+"/waiting", patelTok, nil)
		var count any
		for _, c := range room.Body["waiting"].([]any) {
			if c.(map[string]any)["id"] == visit {
				count = c.(map[string]any)["messages"]
			}
		}
		require.EqualValues(t, 3, count, "the card says there is a conversation")

		// The clinic turns patients' messages off: staff still write.
		require.Equal(t, http.StatusOK, s.do("PUT", "/clinic/waiting", adminTok, map[string]bool{"patientChat": false}).Status)
		off := s.do("POST", "/visits/"+visit+"/messages", patientTok, map[string]string{"text": "hello?"})
		require.Equal(t, http.StatusForbidden, off.Status)
		require.Equal(t, "chat_off", off.str("error", "code"))
		require.Equal(t, false, s.do("GET", "/visits/"+visit, patientTok, nil).Body["visit"].(map[string]any)["chatOpen"])
		require.Equal(t, http.StatusCreated, s.do("POST", "/visits/"+visit+"/messages", patelTok, map[string]string{"text": "I'll be with you shortly"}).Status)

		// Audited without the text; sealed at rest.
		trail := s.do("GET", "/audit?action=message.", adminTok, nil)
		rows := trail.Body["audit"].([]any)
		require.Len(t, rows, 5, "lee, the patient, the room's two, patel")
		for _, row := range rows {
			require.NotContains(t, row.(map[string]any)["detail"], "late")
		}
		var bodies []string
		require.NoError(t, s.db.Gorm().Raw("SELECT body FROM messages").Scan(&bodies).Error)
		for _, b := range bodies {
			require.True(t, strings.HasPrefix(b, "hx1:"), "sealed: %q", b)
		}

		// An ended visit's conversation is closed.
		require.Equal(t, http.StatusNoContent, s.do("POST", "/visits/"+other+"/end", leeTok, nil).Status)
		require.Equal(t, http.StatusConflict, s.do("POST", "/visits/"+other+"/messages", leeTok, map[string]string{"text": "one more"}).Status)
	})
}
