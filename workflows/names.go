// Package workflows holds the visit workflow: one long-running workflow per
// patient visit that owns its state machine and runs transfers.
package workflows

// TaskQueue is the queue the visit workflow and its activities run on.
const TaskQueue = "handoff-visits"

// VisitWorkflowID is the workflow id of a visit. Visit ids are opaque UUIDs,
// so no patient data reaches Temporal's ids.
func VisitWorkflowID(visitID string) string { return "visit/" + visitID }

// Message names of the visit workflow, shared by the API, worker and tests.
const (
	UpdateCheckIn  = "checkin"
	UpdateAdmit    = "admit"
	UpdateTransfer = "transfer"
	UpdateLeave    = "leave"
	UpdateEnd      = "end"
	UpdateRejoin   = "rejoin"
	UpdateHold     = "hold"
	// Guests of the patient's call.
	UpdateInviteGuest = "invite-guest"
	UpdateAdmitGuest  = "admit-guest"
	UpdateRemoveGuest = "remove-guest"
	SignalPresence    = "presence"
	QueryStatus       = "status"
)
