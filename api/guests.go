package api

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/workflows"
)

const (
	guestLinkPrefix = "hl_" // a guest's single-use link
	guestPrefix     = "hg_" // the token a guest holds once they came in
)

// inviteGuest makes a single-use link that brings a guest into the path's
// visit's call (the visit's invite-guest update). The link is shown once,
// to the provider who asked; only its hash is kept.
func (h *handlers) inviteGuest(c *gin.Context) {
	body, err := h.invitingGuest(c)
	reply(c, http.StatusCreated, body, err)
}

func (h *handlers) invitingGuest(c *gin.Context) (gin.H, error) {
	v, _, err := h.visitForProvider(c)
	if err != nil {
		return nil, err
	}
	key := idempotencyKey(c)
	// The same key names the same guest: a retried invitation does not
	// make a second one.
	guestID := uuid.NewSHA1(uuid.NameSpaceURL, []byte("guest:"+v.ID+":"+key)).String()
	link, hash := newToken(guestLinkPrefix)
	req := workflows.GuestRequest{ActorID: callerOf(c).User.ID, GuestID: guestID, LinkHash: hash}
	if err := workflows.Guest(c, h.Temporal, v.ID, workflows.UpdateInviteGuest, key, req); err != nil {
		return nil, err
	}
	g, err := h.DB.With(c).Guests.Get(guestID)
	if err != nil {
		return nil, err
	}
	if g.LinkHash != hash {
		// A retry of an invitation made before: its link was never kept, so
		// it gets a new one (the old one stops working) while still unused.
		if ok, err := h.DB.With(c).Guests.NewLink(guestID, hash); err != nil {
			return nil, err
		} else if !ok {
			return nil, clinic.ErrGuestLinkUsed
		}
	}
	return gin.H{"guest": guestView(g), "link": h.guestLink(c, link)}, nil
}

// guestLink is the address of the guest page carrying the link's token in
// its fragment, which browsers never send to a server.
func (h *handlers) guestLink(c *gin.Context, token string) string {
	return h.publicBase(c) + "/g#" + token
}

// admitGuest lets a guest who waits in the lobby into the patient's call.
func (h *handlers) admitGuest(c *gin.Context) {
	reply(c, http.StatusNoContent, nil, h.guestUpdate(c, workflows.UpdateAdmitGuest))
}

// removeGuest takes a guest out of the visit (out of the call, or the
// lobby, or an unused link).
func (h *handlers) removeGuest(c *gin.Context) {
	reply(c, http.StatusNoContent, nil, h.guestUpdate(c, workflows.UpdateRemoveGuest))
}

func (h *handlers) guestUpdate(c *gin.Context, name string) error {
	v, _, err := h.visitForProvider(c)
	if err != nil {
		return err
	}
	if _, err := uuid.Parse(c.Param("guestId")); err != nil {
		return errNotFound("guest")
	}
	g, err := h.DB.With(c).Guests.OfVisit(c.Param("guestId"), v.ID)
	if err != nil {
		return errNotFound("guest")
	}
	return workflows.Guest(c, h.Temporal, v.ID, name, idempotencyKey(c),
		workflows.GuestRequest{ActorID: callerOf(c).User.ID, GuestID: g.ID})
}

// showGuestLink says whether a guest link works, and who invited.
func (h *handlers) showGuestLink(c *gin.Context) {
	g, err := h.liveGuestLink(c)
	if err != nil {
		fail(c, err)
		return
	}
	by, err := h.DB.With(c).Users.Get(g.InvitedByID)
	reply(c, http.StatusOK, gin.H{"invitedBy": by.DisplayName}, err)
}

// liveGuestLink is the guest of the path's link while it still works.
func (h *handlers) liveGuestLink(c *gin.Context) (store.Guest, error) {
	token := c.Param("token")
	if !strings.HasPrefix(token, guestLinkPrefix) || len(token) > 100 {
		return store.Guest{}, clinic.ErrGuestLinkDead
	}
	g, err := h.DB.With(c).Guests.ByLinkHash(hashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return g, clinic.ErrGuestLinkDead
	} else if err != nil {
		return g, err
	}
	return g, guestLinkState(g, time.Now().UTC())
}

// guestLinkState refuses a link that was used, or is dead.
func guestLinkState(g store.Guest, now time.Time) error {
	switch {
	case g.State == clinic.GuestGone || now.After(g.ExpiresAt) && g.State == clinic.GuestInvited:
		return clinic.ErrGuestLinkDead
	case g.State != clinic.GuestInvited:
		return clinic.ErrGuestLinkUsed
	}
	return nil
}

type guestArrival struct {
	Name string `json:"name"`
}

func (r *guestArrival) check() error {
	name, err := clinic.GuestName(r.Name)
	r.Name = name
	return err
}

// arriveAsGuest spends the link: the guest gives a name, gets a token of
// their own and waits in the lobby until a provider lets them in. The
// room's providers see them waiting on the patient's card.
func (h *handlers) arriveAsGuest(c *gin.Context) {
	serveRequest(c, bind, http.StatusCreated, func(c *gin.Context, req guestArrival) (gin.H, error) {
		g, err := h.liveGuestLink(c)
		if err != nil {
			return nil, err
		}
		token, hash := newToken(guestPrefix)
		now := time.Now().UTC()
		err = h.DB.InTx(c, func(q store.Queries) error {
			ok, err := q.Guests.Arrived(g.ID, req.Name, hash, now)
			if err != nil {
				return err
			}
			if !ok { // the link was spent, or the visit moved on, meanwhile
				fresh, err := q.Guests.Get(g.ID)
				if err != nil {
					return err
				}
				return guestLinkState(fresh, now)
			}
			v, err := q.Visits.Get(g.VisitID)
			if err != nil {
				return err
			}
			payload := map[string]any{"visitId": v.ID, "guestId": g.ID, "name": req.Name}
			if err := q.Outbox.ToRoom(v.ClinicID, v.ID, v.RoomID, clinic.EventGuestWaiting, payload, now); err != nil {
				return err
			}
			return q.Audit.Append(store.AuditEvent{ClinicID: v.ClinicID, At: now, ActorKind: clinic.ActorGuest, ActorID: g.ID,
				Action: clinic.AuditGuestArrived, VisitID: &v.ID, RoomID: &v.RoomID, Address: c.ClientIP()})
		})
		if err != nil {
			return nil, err
		}
		g.State, g.Name = clinic.GuestWaiting, store.Sealed(req.Name)
		return gin.H{"token": token, "guest": guestView(g)}, nil
	})
}

// guestSelf is what a guest sees of themself: their state and, in a call,
// its media; nothing of the visit, the waiting room or anyone else.
func (h *handlers) guestSelf(c *gin.Context) {
	g := callerOf(c).Guest
	by, err := h.DB.With(c).Users.Get(g.InvitedByID)
	reply(c, http.StatusOK, gin.H{"guest": guestView(*g), "invitedBy": by.DisplayName}, err)
}

// guestLeaves: the guest leaves the call (and the visit) for good.
func (h *handlers) guestLeaves(c *gin.Context) {
	g := callerOf(c).Guest
	err := workflows.Guest(c, h.Temporal, g.VisitID, workflows.UpdateRemoveGuest, idempotencyKey(c),
		workflows.GuestRequest{ActorKind: clinic.ActorGuest, ActorID: g.ID, GuestID: g.ID})
	reply(c, http.StatusNoContent, nil, err)
}

// guestMessages is the chat of the guest's call while they are in it.
func (h *handlers) guestMessages(c *gin.Context) {
	g := callerOf(c).Guest
	out := []gin.H{}
	if g.State == clinic.GuestInCall && g.CallID != nil {
		msgs, err := h.DB.With(c).Messages.OfCall(*g.CallID, maxConversation)
		if err != nil {
			fail(c, err)
			return
		}
		for _, m := range msgs {
			out = append(out, messageView(m))
		}
	}
	c.JSON(http.StatusOK, gin.H{"messages": out})
}

// guestSays writes into the chat of the guest's call.
func (h *handlers) guestSays(c *gin.Context) {
	serveRequest(c, bind, http.StatusCreated, func(c *gin.Context, req messageRequest) (gin.H, error) {
		g := callerOf(c).Guest
		if g.State != clinic.GuestInCall || g.CallID == nil {
			return nil, newError(http.StatusConflict, "conflict", "you can write once you are in the call")
		}
		from := sender{kind: clinic.ActorGuest, id: g.ID, name: g.Name.String(), outside: true}
		var out gin.H
		err := h.DB.InTx(c, func(q store.Queries) error {
			call, err := q.Calls.Get(*g.CallID)
			if err != nil {
				return err
			}
			out, err = h.postCallMessage(c, q, call, from, req.Text)
			return err
		})
		if err != nil {
			return nil, err
		}
		return gin.H{"message": out}, nil
	})
}

// guestCaller authenticates a guest's token: a guest whose place ended is
// told why, and sees nothing more.
func (h *handlers) guestCaller(c *gin.Context, token string) (*caller, error) {
	g, err := h.DB.With(c).Guests.ByTokenHash(hashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return nil, newError(http.StatusUnauthorized, "unauthorized", "this guest link is no longer valid")
	} else if err != nil {
		return nil, err
	}
	if g.State == clinic.GuestGone {
		code, msg := guestGone(g.GoneReason)
		return nil, newError(http.StatusUnauthorized, code, msg)
	}
	return &caller{Guest: &g}, nil
}

// guestGone is the code and the message a guest gets once their place
// ended, by why.
func guestGone(reason string) (code, msg string) {
	switch reason {
	case clinic.GuestRemoved:
		return "guest_removed", "The provider removed you from the call. You can close this page."
	case clinic.GuestLeft:
		return "guest_left", "You left the call. You can close this page."
	}
	return "guest_call_ended", "The call has ended. You can close this page."
}

// guestView is a guest as the pages show them.
func guestView(g store.Guest) gin.H {
	out := gin.H{"id": g.ID, "visitId": g.VisitID, "name": g.Name.String(), "state": g.State, "participant": clinic.GuestParticipant(g.ID)}
	if g.CallID != nil {
		out["callId"] = *g.CallID
	}
	return out
}

// guestViews are a visit's present guests, for its card.
func guestViews(gs []store.Guest) []gin.H {
	out := make([]gin.H, len(gs))
	for i, g := range gs {
		out[i] = guestView(g)
	}
	return out
}

func requireGuest(c *gin.Context) {
	if cl := callerOf(c); cl == nil || cl.Guest == nil {
		fail(c, newError(http.StatusUnauthorized, "unauthorized", "send the guest token as Authorization: Bearer <token>"))
		return
	}
	c.Next()
}

// requireInCall lets in whoever can be in a call: a provider, a patient
// or a guest (the media routes).
func requireInCall(c *gin.Context) {
	if callerOf(c) == nil {
		fail(c, errUnauthorized)
		return
	}
	c.Next()
}
