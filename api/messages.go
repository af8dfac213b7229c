package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/store"
)

// maxConversation bounds the messages a conversation lists.
const maxConversation = 200

type messageRequest struct {
	Text string `json:"text"`
}

func (r *messageRequest) check() error {
	text, err := clinic.MessageText(r.Text)
	r.Text = text
	return err
}

// sender is who writes into a conversation: outside is a patient or a
// guest, whom the clinic may keep from writing (clinic.MayMessage).
type sender struct {
	kind, id, name string
	outside        bool
}

// conversation is the path's visit and who the caller is in it: its
// patient, or a provider of its room.
func (h *handlers) conversation(c *gin.Context) (store.Visit, sender, error) {
	cl := callerOf(c)
	if cl.Visit != nil {
		id, err := pathID(c, "visit")
		if err != nil || id != cl.Visit.ID {
			return store.Visit{}, sender{}, errNotFound("visit")
		}
		v := *cl.Visit
		return v, sender{kind: clinic.ActorPatient, id: v.ID, name: v.PatientName.String(), outside: true}, nil
	}
	v, _, err := h.visitForProvider(c)
	return v, sender{kind: clinic.ActorUser, id: cl.User.ID, name: cl.User.DisplayName}, err
}

func (h *handlers) sendMessage(c *gin.Context) {
	serveRequest(c, bind, http.StatusCreated, func(c *gin.Context, req messageRequest) (gin.H, error) {
		v, from, err := h.conversation(c)
		if err != nil {
			return nil, err
		}
		var out gin.H
		err = h.DB.InTx(c, func(q store.Queries) error {
			out, err = h.postMessage(c, q, v, from, req.Text)
			return err
		})
		if err != nil {
			return nil, err
		}
		return gin.H{"message": out}, nil
	})
}

// postMessage writes one message into v's conversation, tells its patient
// and its room's providers, and audits that it was sent (not what it said).
// While the patient is in a call, the message goes to the call's chat.
func (h *handlers) postMessage(c *gin.Context, q store.Queries, v store.Visit, from sender, text string) (gin.H, error) {
	if v.State == store.VisitEnded {
		return nil, clinic.ErrVisitEnded
	}
	if v.State == store.VisitInCall && v.CallID != nil {
		call, err := q.Calls.Get(*v.CallID)
		if err != nil {
			return nil, err
		}
		return h.postCallMessage(c, q, call, from, text)
	}
	if err := mayMessage(q, v.ClinicID, from); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	m := store.Message{ClinicID: v.ClinicID, VisitID: v.ID, SenderKind: from.kind, SenderID: from.id,
		SenderName: store.Sealed(from.name), Body: store.Sealed(text), CreatedAt: now}
	if err := q.Messages.Add(&m); err != nil {
		return nil, err
	}
	view := messageView(m)
	if err := q.Outbox.ToPatient(v.ClinicID, v.ID, clinic.EventMessage, view, now); err != nil {
		return nil, err
	}
	if err := q.Outbox.ToRoom(v.ClinicID, v.ID, v.RoomID, clinic.EventMessage, view, now); err != nil {
		return nil, err
	}
	return view, q.Audit.Append(messageAudit(c, v.ClinicID, from, &v.ID, &v.RoomID, now))
}

// postCallMessage writes one message into a call's chat: a copy into the
// conversation of each patient in the call (it travels, and is purged,
// with each visit), one event to each of them and one to the room's
// providers. Guests read the chat from the call.
func (h *handlers) postCallMessage(c *gin.Context, q store.Queries, call store.Call, from sender, text string) (gin.H, error) {
	if err := mayMessage(q, call.ClinicID, from); err != nil {
		return nil, err
	}
	patients, err := q.Visits.AllInCall(call.ID)
	if err != nil {
		return nil, err
	}
	if len(patients) == 0 {
		return nil, clinic.ErrPatientNotInCall
	}
	now := time.Now().UTC()
	sendID := uuid.NewString()
	var view gin.H
	for _, v := range patients {
		m := store.Message{ClinicID: call.ClinicID, VisitID: v.ID, SenderKind: from.kind, SenderID: from.id,
			SenderName: store.Sealed(from.name), Body: store.Sealed(text), CreatedAt: now, CallID: &call.ID, SendID: sendID}
		if err := q.Messages.Add(&m); err != nil {
			return nil, err
		}
		view = messageView(m)
		if err := q.Outbox.ToPatient(call.ClinicID, v.ID, clinic.EventMessage, view, now); err != nil {
			return nil, err
		}
	}
	if err := q.Outbox.ToRoom(call.ClinicID, patients[0].ID, call.RoomID, clinic.EventMessage, view, now); err != nil {
		return nil, err
	}
	return view, q.Audit.Append(messageAudit(c, call.ClinicID, from, &patients[0].ID, &call.RoomID, now))
}

// mayMessage applies the clinic's chat setting to the sender.
func mayMessage(q store.Queries, clinicID string, from sender) error {
	cl, err := q.Clinics.Get(clinicID)
	if err != nil {
		return err
	}
	return clinic.MayMessage(from.outside, cl.PatientChat)
}

// messageAudit is the audit row of a message: that it was sent, by whom,
// never what it said.
func messageAudit(c *gin.Context, clinicID string, from sender, visitID, roomID *string, now time.Time) store.AuditEvent {
	return store.AuditEvent{ClinicID: clinicID, At: now, ActorKind: from.kind, ActorID: from.id,
		Action: clinic.AuditMessageSent, VisitID: visitID, RoomID: roomID, Address: c.ClientIP()}
}

func messageView(m store.Message) gin.H {
	from := "provider"
	if m.SenderKind == clinic.ActorPatient || m.SenderKind == clinic.ActorGuest {
		from = m.SenderKind
	}
	out := gin.H{"id": m.ID, "visitId": m.VisitID, "from": from, "senderName": m.SenderName.String(), "text": m.Body.String(), "at": m.CreatedAt}
	if m.CallID != nil {
		out["callId"], out["sendId"] = *m.CallID, m.SendID
	}
	return out
}

// listMessages is a visit's conversation, which travels with the visit: a
// receiving provider reads what was said in the waiting room before.
func (h *handlers) listMessages(c *gin.Context) {
	v, _, err := h.conversation(c)
	if err != nil {
		fail(c, err)
		return
	}
	msgs, err := h.DB.With(c).Messages.OfVisit(v.ID, maxConversation)
	out := make([]gin.H, len(msgs))
	for i, m := range msgs {
		out[i] = messageView(m)
	}
	reply(c, http.StatusOK, gin.H{"messages": out}, err)
}

// messageRoom sends one message to every patient waiting in the room
// ("Dr. Lee is running 10 minutes late"), each into their own conversation.
func (h *handlers) messageRoom(c *gin.Context) {
	serveRequest(c, bind, http.StatusCreated, func(c *gin.Context, req messageRequest) (gin.H, error) {
		r, err := h.roomForCaller(c, c.Param("id"))
		if err != nil {
			return nil, err
		}
		cl := callerOf(c)
		from := sender{kind: "user", id: cl.User.ID, name: cl.User.DisplayName}
		sent := 0
		err = h.DB.InTx(c, func(q store.Queries) error {
			visits, err := q.Visits.InRoom(r.ID)
			if err != nil {
				return err
			}
			for _, v := range visits {
				if v.State != store.VisitWaiting {
					continue
				}
				if _, err := h.postMessage(c, q, v, from, req.Text); err != nil && !errors.Is(err, clinic.ErrVisitEnded) {
					return err
				}
				sent++
			}
			return nil
		})
		return gin.H{"sent": sent}, err
	})
}
