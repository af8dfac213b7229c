package activities

import (
	"context"
	"time"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/store"
)

// InviteGuest makes a guest's single-use link for the visit's call: the
// provider inviting is in the call, and the call has room for one more
// beside everyone already in it or invited.
func (a *Activities) InviteGuest(ctx context.Context, p GuestParams) error {
	return a.tx(ctx, func(q store.Queries) error {
		if _, err := q.Guests.Get(p.GuestID); err == nil {
			return nil // made by an earlier attempt
		}
		v, actor, err := a.guestCall(q, p)
		if err != nil {
			return err
		}
		people, err := q.Calls.People(*v.CallID)
		if err != nil {
			return err
		}
		present, err := q.Guests.Present(v.ID)
		if err != nil {
			return err
		}
		for _, g := range present {
			if g.State != clinic.GuestInCall {
				people++ // an invited or waiting guest has a place kept
			}
		}
		if err := clinic.CheckCallRoom(people); err != nil {
			return AsApplicationError(err)
		}
		now := a.now()
		if err := q.Guests.Create(store.Guest{ID: p.GuestID, ClinicID: v.ClinicID, VisitID: v.ID, InvitedByID: actor.ID,
			LinkHash: p.LinkHash, State: clinic.GuestInvited, CreatedAt: now, ExpiresAt: now.Add(clinic.GuestLinkTTL)}); err != nil {
			return err
		}
		w := a.writer(q, v.ClinicID, v.ID, now)
		return w.all(
			w.toRoom(v.RoomID, clinic.EventGuestInvited, map[string]any{"visitId": v.ID, "guestId": p.GuestID}),
			w.audit(clinic.ActorUser, actor.ID, clinic.AuditGuestInvited, &v.RoomID, nil, "guest "+p.GuestID),
		)
	})
}

// AdmitGuest lets a waiting guest into the visit's call: the patient is in
// it, the provider letting them in is too, and the call has room.
func (a *Activities) AdmitGuest(ctx context.Context, p GuestParams) error {
	var callID string
	err := a.tx(ctx, func(q store.Queries) error {
		g, err := q.Guests.OfVisit(p.GuestID, p.VisitID)
		if _, err := found(g, err, "guest"); err != nil {
			return err
		}
		if g.State == clinic.GuestInCall && g.CallID != nil && *g.CallID == p.CallID {
			callID = p.CallID
			return nil // done by an earlier attempt
		}
		v, actor, err := a.guestCall(q, p)
		if err != nil {
			return err
		}
		if err := clinic.MayAdmitGuest(g.State, true); err != nil {
			return AsApplicationError(err)
		}
		people, err := q.Calls.People(*v.CallID)
		if err != nil {
			return err
		}
		if err := clinic.CheckCallRoom(people); err != nil {
			return AsApplicationError(err)
		}
		now := a.now()
		if ok, err := q.Guests.Admitted(g.ID, *v.CallID, now); err != nil || !ok {
			if err == nil {
				err = AsApplicationError(clinic.ErrGuestNotWaiting)
			}
			return err
		}
		callID = *v.CallID
		return a.tellCall(q, v, g, clinic.EventGuestJoined, clinic.GuestJoinedMessage(g.Name.String()), now,
			a.writer(q, v.ClinicID, v.ID, now).audit(clinic.ActorUser, actor.ID, clinic.AuditGuestAdmitted, &v.RoomID, nil, "guest "+g.ID+" call "+callID))
	})
	if err != nil {
		return err
	}
	// Media after the commit, as for a patient: the node (re)learns the
	// call, then binds the guest into it.
	m, err := a.callMedia(ctx, callID)
	if err != nil {
		return err
	}
	if err := m.CreateCall(ctx, callID); err != nil {
		return err
	}
	return m.Attach(ctx, callID, clinic.GuestParticipant(p.GuestID))
}

// RemoveGuest ends a guest's place in the visit: a provider removed them,
// or they left (ActorKind guest). Their media leaves the call first, so a
// retry after a crash still finds whom to detach.
func (a *Activities) RemoveGuest(ctx context.Context, p GuestParams) error {
	g, err := a.DB.With(ctx).Guests.OfVisit(p.GuestID, p.VisitID)
	if _, err := found(g, err, "guest"); err != nil {
		return err
	}
	if g.State == clinic.GuestGone {
		return nil
	}
	if g.State == clinic.GuestInCall && g.CallID != nil {
		m, err := a.callMedia(ctx, *g.CallID)
		if err != nil {
			return err
		}
		if err := m.Detach(ctx, *g.CallID, clinic.GuestParticipant(g.ID)); err != nil {
			return err
		}
	}
	return a.tx(ctx, func(q store.Queries) error {
		v, err := loadVisit(q, p.VisitID)
		if err != nil {
			return err
		}
		reason, actorKind := clinic.GuestRemoved, clinic.ActorUser
		if p.ActorKind == clinic.ActorGuest {
			reason, actorKind = clinic.GuestLeft, clinic.ActorGuest
		} else if _, err := providerForVisit(q, p.ActorID, v); err != nil {
			return err
		}
		now := a.now()
		ok, err := q.Guests.Gone(g.ID, reason, now)
		if err != nil || !ok {
			return err
		}
		return a.tellCall(q, v, g, clinic.EventGuestGone, clinic.GuestLeftMessage(g.Name.String()), now,
			a.writer(q, v.ClinicID, v.ID, now).audit(actorKind, p.ActorID, clinic.AuditGuestGone, &v.RoomID, nil, "guest "+g.ID+" "+reason))
	})
}

// guestCall loads the visit of a guest operation and the provider doing
// it: the patient is in a call, and the provider acts for the room and is
// in that call.
func (a *Activities) guestCall(q store.Queries, p GuestParams) (store.Visit, store.User, error) {
	v, err := loadVisit(q, p.VisitID)
	if err != nil {
		return store.Visit{}, store.User{}, err
	}
	if v.State != store.VisitInCall || v.CallID == nil || *v.CallID != p.CallID {
		return store.Visit{}, store.User{}, AsApplicationError(clinic.ErrPatientNotInCall)
	}
	actor, err := providerForVisit(q, p.ActorID, v)
	if err != nil {
		return store.Visit{}, store.User{}, err
	}
	in, err := q.Calls.IsParticipant(p.CallID, actor.ID)
	if err != nil {
		return store.Visit{}, store.User{}, err
	}
	if !in {
		return store.Visit{}, store.User{}, AsApplicationError(clinic.ErrNotInCall)
	}
	return v, actor, nil
}

// tellCall tells the patients of v's call and its room's providers about
// guest g, with an audit row.
func (a *Activities) tellCall(q store.Queries, v store.Visit, g store.Guest, typ, message string, now time.Time, audit step) error {
	payload := map[string]any{"visitId": v.ID, "guestId": g.ID, "name": g.Name.String(), "message": message}
	steps := []step{a.writer(q, v.ClinicID, v.ID, now).toRoom(v.RoomID, typ, payload), audit}
	if v.CallID != nil {
		patients, err := q.Visits.AllInCall(*v.CallID)
		if err != nil {
			return err
		}
		for _, other := range patients {
			steps = append(steps, a.writer(q, other.ClinicID, other.ID, now).toPatient(typ, payload))
		}
	}
	return writer{}.all(steps...)
}

// detachGuests takes the visit's guests in callID out of it on the media
// node as its patient leaves, and returns the guests still present, for
// settleGuests to move once the patient's leaving commits.
func detachGuests(ctx context.Context, m Media, q store.Queries, visitID, callID string) ([]store.Guest, error) {
	present, err := q.Guests.Present(visitID)
	if err != nil {
		return nil, err
	}
	for _, g := range present {
		if g.State == clinic.GuestInCall && g.CallID != nil && *g.CallID == callID {
			if err := m.Detach(ctx, callID, clinic.GuestParticipant(g.ID)); err != nil {
				return nil, err
			}
		}
	}
	return present, nil
}

// settleGuests puts the guests of a visit whose patient left the call
// where clinic.GuestsAfterLeaving says: back in the lobby, or gone.
func settleGuests(q store.Queries, present []store.Guest, keep bool, now time.Time) error {
	for _, g := range present {
		var err error
		switch clinic.GuestsAfterLeaving(keep) {
		case clinic.GuestWaiting:
			_, err = q.Guests.BackToLobby(g.ID)
		default:
			_, err = q.Guests.Gone(g.ID, clinic.GuestCallEnded, now)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
