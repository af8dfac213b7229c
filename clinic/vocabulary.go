package clinic

// VisitState is where a visit stands in the visit workflow's state machine
// (and in its projection row).
type VisitState string

const (
	VisitWaiting      VisitState = "waiting"
	VisitInCall       VisitState = "in_call"
	VisitTransferring VisitState = "transferring"
	VisitEnded        VisitState = "ended"
)

// CallKind is 1:1 or group.
type CallKind string

const (
	CallOneToOne CallKind = "one_to_one"
	CallGroup    CallKind = "group"
)

// RoomKind tells a provider's own room from a room shared by its members.
type RoomKind string

const (
	RoomPersonal RoomKind = "personal"
	RoomShared   RoomKind = "shared"
)

// DisplayName is the <name> patients read for a room: its owner's name for
// a personal room (ownerName, "" if it has none), the room's name otherwise.
func DisplayName(kind RoomKind, roomName, ownerName string) string {
	if kind == RoomPersonal && ownerName != "" {
		return ownerName
	}
	return roomName
}
