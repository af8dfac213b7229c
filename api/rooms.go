package api

import (
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
	var users []store.User
	if err := h.DB.WithContext(c).Where("clinic_id = ?", clinicID).Find(&users).Error; err != nil {
		return nil, err
	}
	for _, u := range users {
		idx.users[u.ID] = u
	}
	var rooms []store.Room
	if err := h.DB.WithContext(c).Where("clinic_id = ?", clinicID).Find(&rooms).Error; err != nil {
		return nil, err
	}
	for _, r := range rooms {
		idx.rooms[r.ID] = r
	}
	var online []string
	if err := h.DB.WithContext(c).Model(&store.Presence{}).
		Where("last_seen_at > ? AND user_id IN (SELECT id FROM users WHERE clinic_id = ?)", time.Now().UTC().Add(-onlineWindow), clinicID).
		Distinct().Pluck("user_id", &online).Error; err != nil {
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
	var ids []string
	if err := h.DB.WithContext(c).Model(&store.RoomMember{}).Where("room_id = ?", r.ID).Pluck("user_id", &ids).Error; err != nil {
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
	cl := callerOf(c)
	idx, err := h.loadClinic(c, cl.Clinic.ID)
	if err != nil {
		fail(c, err)
		return
	}
	mine, err := store.RoomsOf(h.DB.WithContext(c), *cl.User)
	if err != nil {
		fail(c, err)
		return
	}
	access := map[string]bool{}
	for _, id := range mine {
		access[id] = true
	}
	type count struct {
		RoomID string
		N      int
	}
	var counts []count
	if err := h.DB.WithContext(c).Model(&store.Visit{}).Select("room_id, COUNT(*) AS n").
		Where("clinic_id = ? AND state = ?", cl.Clinic.ID, store.VisitWaiting).Group("room_id").Scan(&counts).Error; err != nil {
		fail(c, err)
		return
	}
	waiting := map[string]int{}
	for _, n := range counts {
		waiting[n.RoomID] = n.N
	}
	rooms := []gin.H{}
	for _, r := range sortedRooms(idx) {
		if r.DeletedAt != nil || (r.Kind == store.RoomShared && !clinic.HasSharedRooms(cl.Clinic.Plan)) {
			continue
		}
		providers, err := h.providersOf(c, idx, r)
		if err != nil {
			fail(c, err)
			return
		}
		online := []gin.H{}
		for _, p := range providers {
			if idx.online[p.ID] {
				online = append(online, gin.H{"id": p.ID, "name": p.DisplayName})
			}
		}
		view := gin.H{"id": r.ID, "kind": r.Kind, "name": r.Name, "displayName": displayName(idx, r), "slug": r.Slug,
			"online": online, "waitingCount": waiting[r.ID], "canActFor": access[r.ID]}
		if r.OwnerID != nil {
			view["owner"] = gin.H{"id": *r.OwnerID, "name": idx.users[*r.OwnerID].DisplayName}
		}
		rooms = append(rooms, view)
	}
	c.JSON(http.StatusOK, gin.H{"rooms": rooms})
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
	var r store.Room
	if err := h.DB.WithContext(c).Take(&r, "id = ? AND clinic_id = ? AND deleted_at IS NULL", id, cl.Clinic.ID).Error; err != nil {
		return r, errNotFound("room")
	}
	ok, err := store.CanActFor(h.DB.WithContext(c), *cl.User, r)
	if err != nil {
		return r, err
	}
	if !ok {
		return r, errForbidden("you do not have access to this room")
	}
	return r, nil
}

// waitingRoom lists a room's Patient Information Cards, oldest first.
func (h *handlers) waitingRoom(c *gin.Context) {
	r, err := h.roomForCaller(c, c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	idx, err := h.loadClinic(c, r.ClinicID)
	if err != nil {
		fail(c, err)
		return
	}
	var visits []store.Visit
	if err := h.DB.WithContext(c).Where("room_id = ? AND state <> ?", r.ID, store.VisitEnded).
		Order("checked_in_at, id").Find(&visits).Error; err != nil {
		fail(c, err)
		return
	}
	waiting, inCall := []gin.H{}, []gin.H{}
	for _, v := range visits {
		if v.State == store.VisitInCall {
			inCall = append(inCall, card(idx, v))
		} else {
			waiting = append(waiting, card(idx, v))
		}
	}
	c.JSON(http.StatusOK, gin.H{"room": gin.H{"id": r.ID, "name": r.Name, "kind": r.Kind, "displayName": displayName(idx, r)},
		"waiting": waiting, "inCall": inCall})
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
		out["message"] = "Transferred by " + name
	}
	if v.TransferredFromRoomID != nil {
		out["transferredFrom"] = gin.H{"id": *v.TransferredFromRoomID, "name": idx.rooms[*v.TransferredFromRoomID].Name}
	}
	if v.TransferNote != "" {
		out["note"] = v.TransferNote
	}
	return out
}
