package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/workflows"
)

// Rooms as the clinic runs them: shared rooms made, renamed, staffed and
// archived; anyone's room's link changed. Rules: clinic.MayEditRoom,
// clinic.MayManageSharedRooms, clinic.MayArchive.

func roomView(r store.Room, displayName string, members []string) gin.H {
	v := gin.H{"id": r.ID, "kind": r.Kind, "name": r.Name, "displayName": displayName, "slug": r.Slug,
		"open": r.ClosedAt == nil, "ownerId": r.OwnerID, "memberIds": members}
	if members == nil {
		v["memberIds"] = []string{}
	}
	return v
}

func (h *handlers) createRoom(c *gin.Context) {
	serveRequest(c, bind, http.StatusCreated, h.newSharedRoom)
}

func (h *handlers) newSharedRoom(c *gin.Context, req newRoomRequest) (gin.H, error) {
	cl := callerOf(c)
	if err := clinic.MayManageSharedRooms(cl.User.Role, cl.Clinic.Plan); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	r := store.Room{ID: uuid.NewString(), ClinicID: cl.Clinic.ID, Kind: store.RoomShared, Name: req.Name, Slug: req.Slug, CreatedAt: now}
	err := h.DB.InTx(c, func(q store.Queries) error {
		if err := q.Rooms.Create(r, now); err != nil {
			return err
		}
		row := auditRow(c, clinic.AuditRoomCreated)
		row.RoomID, row.Detail = &r.ID, fmt.Sprintf("%s (/c/%s)", r.Name, r.Slug)
		return q.Audit.Append(row)
	})
	return gin.H{"room": roomView(r, r.Name, nil)}, err
}

// managedRoom is the :id live room of the caller's clinic, once the caller
// may change it.
func (h *handlers) managedRoom(c *gin.Context, q store.Queries) (store.Room, error) {
	cl := callerOf(c)
	id, err := pathID(c, "room")
	if err != nil {
		return store.Room{}, err
	}
	r, err := q.Rooms.LiveInClinic(id, cl.Clinic.ID)
	if errors.Is(err, store.ErrNotFound) {
		return r, errNotFound("room")
	} else if err != nil {
		return r, err
	}
	if r.Kind == store.RoomShared {
		return r, clinic.MayManageSharedRooms(cl.User.Role, cl.Clinic.Plan)
	}
	return r, clinic.MayEditRoom(cl.User.Actor(), r.Facts())
}

func (h *handlers) changeRoom(c *gin.Context) {
	serveRequest(c, bind, http.StatusOK, h.editRoom)
}

// editRoom renames a room and/or changes its link (the old link keeps
// leading to it). A personal room's name is its provider's display name.
func (h *handlers) editRoom(c *gin.Context, req roomChangeRequest) (gin.H, error) {
	var body gin.H
	err := h.DB.InTx(c, func(q store.Queries) error {
		r, err := h.managedRoom(c, q)
		if err != nil {
			return err
		}
		if req.Name != nil && *req.Name != r.Name {
			if r.Kind == store.RoomPersonal {
				owner, err := q.Users.Get(*r.OwnerID)
				if err != nil {
					return err
				}
				owner.DisplayName = *req.Name
				if err := q.Users.SetProfile(owner.ID, owner.FullName, owner.DisplayName); err != nil {
					return err
				}
			}
			if err := q.Rooms.Rename(r.ID, *req.Name); err != nil {
				return err
			}
			row := auditRow(c, clinic.AuditRoomRenamed)
			row.RoomID, row.TargetUserID, row.Detail = &r.ID, r.OwnerID, fmt.Sprintf("%s → %s", r.Name, *req.Name)
			if err := q.Audit.Append(row); err != nil {
				return err
			}
			r.Name = *req.Name
		}
		if req.Slug != nil && *req.Slug != r.Slug {
			if err := q.Rooms.ChangeSlug(r, *req.Slug, time.Now().UTC()); err != nil {
				return err
			}
			row := auditRow(c, clinic.AuditRoomLinkChanged)
			row.RoomID, row.TargetUserID, row.Detail = &r.ID, r.OwnerID, fmt.Sprintf("/c/%s → /c/%s", r.Slug, *req.Slug)
			if err := q.Audit.Append(row); err != nil {
				return err
			}
			r.Slug = *req.Slug
		}
		name, err := q.Rooms.DisplayName(r)
		if err != nil {
			return err
		}
		members, err := q.Rooms.Members(r.ID)
		body = gin.H{"room": roomView(r, name, members)}
		return err
	})
	return body, err
}

// changeMember adds (add) or removes a person of the clinic to or from a
// shared room's members.
func (h *handlers) changeMember(add bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		cl := callerOf(c)
		reply(c, http.StatusNoContent, nil, h.DB.InTx(c, func(q store.Queries) error {
			r, err := h.managedRoom(c, q)
			if err != nil {
				return err
			}
			if r.Kind != store.RoomShared {
				return clinic.ErrNotShared
			}
			userID := c.Param("userId")
			if _, err := uuid.Parse(userID); err != nil {
				return errNotFound("person")
			}
			u, err := q.Users.InClinic(userID, cl.Clinic.ID)
			if errors.Is(err, store.ErrNotFound) {
				return errNotFound("person")
			} else if err != nil {
				return err
			}
			action, changed := clinic.AuditMemberRemoved, false
			if add {
				if !u.Active() {
					return clinic.ErrDeactivated
				}
				action = clinic.AuditMemberAdded
				changed, err = q.Rooms.AddMember(r.ID, u.ID)
			} else {
				changed, err = q.Rooms.RemoveMember(r.ID, u.ID)
			}
			if err != nil || !changed {
				return err
			}
			row := auditRow(c, action)
			row.RoomID, row.TargetUserID = &r.ID, &u.ID
			return q.Audit.Append(row)
		}))
	}
}

func (h *handlers) archiveRoom(c *gin.Context) {
	serveRequest(c, bindOptional, http.StatusOK, h.archive)
}

// archive archives a shared room. Patients still waiting there are refused
// with their count, or moved first to the room named: each move is a
// transfer by the caller, with its texts and audit rows.
func (h *handlers) archive(c *gin.Context, req archiveRequest) (gin.H, error) {
	q := h.DB.With(c)
	r, err := h.managedRoom(c, q)
	if err != nil {
		return nil, err
	}
	visits, err := q.Visits.InRoom(r.ID)
	if err != nil {
		return nil, err
	}
	if err := clinic.MayArchive(r.Facts(), len(visits), req.MoveToRoomID); err != nil {
		return nil, err
	}
	moved := 0
	if len(visits) > 0 {
		if err := h.moveOut(c, r, visits, req.MoveToRoomID); err != nil {
			return nil, err
		}
		moved = len(visits)
	}
	err = h.DB.InTx(c, func(q store.Queries) error {
		if left, err := q.Visits.InRoom(r.ID); err != nil {
			return err
		} else if len(left) > 0 { // someone checked in meanwhile
			return clinic.MayArchive(r.Facts(), len(left), "")
		}
		if ok, err := q.Rooms.Archive(r.ID, time.Now().UTC()); err != nil || !ok {
			return err
		}
		row := auditRow(c, clinic.AuditRoomArchived)
		row.RoomID, row.TargetRoomID = &r.ID, nilIfEmpty(req.MoveToRoomID)
		row.Detail = fmt.Sprintf("%d moved", moved)
		return q.Audit.Append(row)
	})
	return gin.H{"moved": moved}, err
}

// moveOut transfers every patient of r to room target as the caller, who
// must act for r (a member of it) like any sender of a transfer.
func (h *handlers) moveOut(c *gin.Context, r store.Room, visits []store.Visit, target string) error {
	cl := callerOf(c)
	q := h.DB.With(c)
	acts, err := q.Rooms.CanActFor(*cl.User, r)
	if err != nil {
		return err
	}
	if err := clinic.MayTransfer(cl.User.Actor(), cl.Clinic.Plan, acts); err != nil {
		return clinic.ErrMoveNeedsMember
	}
	t, err := q.Rooms.LiveInClinic(target, cl.Clinic.ID)
	var facts *clinic.Room
	if err == nil {
		f := t.Facts()
		facts = &f
	}
	if err := clinic.TransferTarget(cl.Clinic.ID, r.ID, facts); err != nil {
		return err
	}
	for _, v := range visits {
		if v.State == store.VisitInCall {
			return clinic.ErrPatientsInCall
		}
	}
	for _, v := range visits {
		_, err := workflows.Transfer(c, h.Temporal, v.ID, "archive-"+r.ID+"-"+v.ID,
			workflows.TransferRequest{ActorID: cl.User.ID, TargetRoomID: target, FromRoomID: r.ID, Note: "moved: " + r.Name + " was archived"})
		if err != nil {
			return err
		}
	}
	return nil
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
