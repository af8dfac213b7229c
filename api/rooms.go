package api

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/store"
)

// onlineWindow is how fresh a provider's live-stream heartbeat must be for
// the provider to count as online.
const onlineWindow = 45 * time.Second

// clinicIndex holds a clinic's users and rooms by id, read once per request
// so lists do not query per row.
type clinicIndex struct {
	users  map[string]store.User
	rooms  map[string]store.Room
	online map[string]bool // user id → online
}

func (h *handlers) loadClinic(c *gin.Context, clinicID string) (*clinicIndex, error) {
	idx := &clinicIndex{users: map[string]store.User{}, rooms: map[string]store.Room{}, online: map[string]bool{}}
	q := h.DB.With(c)
	users, err := q.Users.OfClinic(clinicID)
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		idx.users[u.ID] = u
	}
	rooms, err := q.Rooms.OfClinic(clinicID)
	if err != nil {
		return nil, err
	}
	for _, r := range rooms {
		idx.rooms[r.ID] = r
	}
	online, err := q.Presence.OnlineIn(clinicID, time.Now().UTC().Add(-onlineWindow))
	if err != nil {
		return nil, err
	}
	for _, id := range online {
		idx.online[id] = true
	}
	return idx, nil
}

// providersOf lists who acts for a room: its owner, or its members.
func (h *handlers) providersOf(c *gin.Context, idx *clinicIndex, r store.Room) ([]store.User, error) {
	if r.Kind == store.RoomPersonal && r.OwnerID != nil {
		return []store.User{idx.users[*r.OwnerID]}, nil
	}
	ids, err := h.DB.With(c).Rooms.Members(r.ID)
	if err != nil {
		return nil, err
	}
	out := make([]store.User, 0, len(ids))
	for _, id := range ids {
		out = append(out, idx.users[id])
	}
	return out, nil
}

func displayName(idx *clinicIndex, r store.Room) string {
	owner := ""
	if r.OwnerID != nil {
		owner = idx.users[*r.OwnerID].DisplayName
	}
	return clinic.DisplayName(r.Kind, r.Name, owner)
}

// listRooms: every room of the caller's clinic (any can receive a
// transfer), who of its providers is online, and how many wait in it.
func (h *handlers) listRooms(c *gin.Context) {
	rooms, err := h.roomList(c)
	reply(c, http.StatusOK, gin.H{"rooms": rooms}, err)
}

// waitingRoom lists a room's Patient Information Cards, oldest first.
func (h *handlers) waitingRoom(c *gin.Context) {
	body, err := h.waitingRoomOf(c, c.Param("id"))
	reply(c, http.StatusOK, body, err)
}

func (h *handlers) roomList(c *gin.Context) ([]gin.H, error) {
	cl := callerOf(c)
	idx, err := h.loadClinic(c, cl.Clinic.ID)
	if err != nil {
		return nil, err
	}
	q := h.DB.With(c)
	mine, err := q.Rooms.ForActor(*cl.User)
	if err != nil {
		return nil, err
	}
	access := map[string]bool{}
	for _, id := range mine {
		access[id] = true
	}
	waiting, err := q.Visits.WaitingByRoom(cl.Clinic.ID)
	if err != nil {
		return nil, err
	}
	rooms := []gin.H{}
	for _, r := range sortedRooms(idx) {
		if r.DeletedAt != nil || (r.Kind == store.RoomShared && !clinic.HasSharedRooms(cl.Clinic.Plan)) {
			continue
		}
		providers, err := h.providersOf(c, idx, r)
		if err != nil {
			return nil, err
		}
		online := []gin.H{}
		for _, p := range providers {
			if idx.online[p.ID] {
				online = append(online, gin.H{"id": p.ID, "name": p.DisplayName})
			}
		}
		members := []string{}
		if r.Kind == store.RoomShared {
			for _, p := range providers {
				members = append(members, p.ID)
			}
		}
		view := gin.H{"id": r.ID, "kind": r.Kind, "name": r.Name, "displayName": displayName(idx, r), "slug": r.Slug,
			"online": online, "waitingCount": waiting[r.ID], "canActFor": access[r.ID], "open": r.ClosedAt == nil,
			"ownerId": r.OwnerID, "memberIds": members}
		if r.OwnerID != nil {
			view["owner"] = gin.H{"id": *r.OwnerID, "name": idx.users[*r.OwnerID].DisplayName}
		}
		rooms = append(rooms, view)
	}
	return rooms, nil
}

// sortedUsers lists the clinic's people by full name.
func sortedUsers(idx *clinicIndex) []store.User {
	out := slices.Collect(maps.Values(idx.users))
	slices.SortFunc(out, func(a, b store.User) int { return strings.Compare(a.FullName+a.ID, b.FullName+b.ID) })
	return out
}

func sortedRooms(idx *clinicIndex) []store.Room {
	out := slices.Collect(maps.Values(idx.rooms))
	// Personal rooms first, then shared, each by name.
	slices.SortFunc(out, func(a, b store.Room) int {
		if a.Kind != b.Kind {
			return strings.Compare(string(a.Kind), string(b.Kind)) // "personal" < "shared"
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// roomForCaller loads a room the caller may act for; another clinic's room
// is unknown (404), a room of the clinic without access is 403.
func (h *handlers) roomForCaller(c *gin.Context, id string) (store.Room, error) {
	cl := callerOf(c)
	q := h.DB.With(c)
	r, err := q.Rooms.LiveInClinic(id, cl.Clinic.ID)
	if err != nil {
		return r, errNotFound("room")
	}
	ok, err := q.Rooms.CanActFor(*cl.User, r)
	if err != nil {
		return r, err
	}
	if !ok {
		return r, clinic.ErrNoAccessToRoom
	}
	return r, nil
}

func (h *handlers) waitingRoomOf(c *gin.Context, roomID string) (gin.H, error) {
	r, err := h.roomForCaller(c, roomID)
	if err != nil {
		return nil, err
	}
	idx, err := h.loadClinic(c, r.ClinicID)
	if err != nil {
		return nil, err
	}
	visits, err := h.DB.With(c).Visits.InRoom(r.ID)
	if err != nil {
		return nil, err
	}
	row := auditRow(c, clinic.AuditWaitingRoomViewed)
	row.RoomID, row.Detail = &r.ID, fmt.Sprintf("%d patients", len(visits))
	if err := h.DB.With(c).Audit.Append(row); err != nil {
		return nil, err
	}
	ids := make([]string, len(visits))
	for i, v := range visits {
		ids[i] = v.ID
	}
	counts, err := h.DB.With(c).Messages.CountByVisit(ids)
	if err != nil {
		return nil, err
	}
	guests, err := h.DB.With(c).Guests.PresentIn(ids)
	if err != nil {
		return nil, err
	}
	waiting, inCall := []gin.H{}, []gin.H{}
	for _, v := range visits {
		cv := card(idx, v)
		cv["messages"] = counts[v.ID] // the conversation, on the card that carries it
		cv["guests"] = guestViews(guests[v.ID])
		if v.State == store.VisitInCall {
			inCall = append(inCall, cv)
		} else {
			waiting = append(waiting, cv)
		}
	}
	return gin.H{"room": gin.H{"id": r.ID, "name": r.Name, "kind": r.Kind, "displayName": displayName(idx, r)},
		"waiting": waiting, "inCall": inCall}, nil
}

// card is the Patient Information Card.
func card(idx *clinicIndex, v store.Visit) gin.H {
	out := gin.H{"id": v.ID, "roomId": v.RoomID, "state": v.State, "patientName": v.PatientName,
		"checkedInAt": v.CheckedInAt, "waitingSeconds": int(time.Since(v.CheckedInAt).Seconds()), "transfers": v.Transfers}
	if v.CallID != nil {
		out["callId"] = *v.CallID
	}
	if v.TransferredByID != nil {
		name := idx.users[*v.TransferredByID].DisplayName
		out["transferredBy"] = gin.H{"id": *v.TransferredByID, "name": name}
		out["message"] = clinic.TransferredByMessage(name)
	}
	if v.TransferredFromRoomID != nil {
		out["transferredFrom"] = gin.H{"id": *v.TransferredFromRoomID, "name": idx.rooms[*v.TransferredFromRoomID].Name}
	}
	if v.TransferNote != "" {
		out["note"] = v.TransferNote
	}
	return out
}
