package store

import (
	"time"

	"github.com/handoff-telehealth/handoff/clinic"
)

// Plan is a clinic's subscription; what each allows is the domain's
// (clinic.MayTransfer, clinic.HasSharedRooms).
type Plan = clinic.Plan

const (
	PlanFree    = clinic.PlanFree
	PlanPro     = clinic.PlanPro
	PlanPremium = clinic.PlanPremium
)

// Role is what a user is in its clinic (clinic.Role).
type Role = clinic.Role

const (
	RoleOwner  = clinic.RoleOwner
	RoleAdmin  = clinic.RoleAdmin
	RoleMember = clinic.RoleMember
	RoleStaff  = clinic.RoleStaff
)

// RoomKind, VisitState and CallKind are the domain's (package clinic).
type RoomKind = clinic.RoomKind

const (
	RoomPersonal = clinic.RoomPersonal
	RoomShared   = clinic.RoomShared
)

// VisitState is the projection of the visit workflow's state machine.
type VisitState = clinic.VisitState

const (
	VisitWaiting      = clinic.VisitWaiting
	VisitInCall       = clinic.VisitInCall
	VisitTransferring = clinic.VisitTransferring
	VisitEnded        = clinic.VisitEnded
)

// CallKind is 1:1 or group.
type CallKind = clinic.CallKind

const (
	CallOneToOne = clinic.CallOneToOne
	CallGroup    = clinic.CallGroup
)

// Clinic is a tenant: users, rooms and visits all belong to exactly one.
type Clinic struct {
	ID        string `gorm:"primaryKey"`
	Name      string
	Plan      Plan
	CreatedAt time.Time
	// RequireMFA: every provider of the clinic signs in with a second factor.
	RequireMFA bool `gorm:"column:require_mfa"`
	// WaitAlertMinutes: a waiting patient's card stands out after this long.
	WaitAlertMinutes int `gorm:"default:15"`
	// PatientChat: patients may write to the clinic (staff always may).
	PatientChat bool `gorm:"default:true"`
}

// Message is one line of a visit's conversation; Body and SenderName (a
// patient's name) are sealed.
type Message struct {
	ID         int64 `gorm:"primaryKey;autoIncrement"`
	ClinicID   string
	VisitID    string
	SenderKind string
	SenderID   string
	SenderName Sealed
	Body       Sealed
	CreatedAt  time.Time
	// CallID: said in a call's chat. Each patient of the call gets a copy
	// in their conversation; SendID is the same on every copy.
	CallID *string
	SendID string
}

// Guest is someone a provider brought into a visit's call by a single-use
// link: an interpreter, a family member, another clinician. Name is sealed.
type Guest struct {
	ID          string `gorm:"primaryKey"`
	ClinicID    string
	VisitID     string
	CallID      *string
	InvitedByID string
	LinkHash    string
	TokenHash   *string
	Name        Sealed
	State       clinic.GuestState
	GoneReason  string
	CreatedAt   time.Time
	ExpiresAt   time.Time
	ArrivedAt   *time.Time
	AdmittedAt  *time.Time
	GoneAt      *time.Time
}

// User is a provider or staff member who signs in to the dashboard.
type User struct {
	ID           string `gorm:"primaryKey"`
	ClinicID     string
	Email        string
	FullName     string
	DisplayName  string
	Role         Role
	PasswordHash string
	CreatedAt    time.Time
	// DeactivatedAt: the person left; they cannot sign in, their rows stay.
	DeactivatedAt *time.Time
	// FailedSignIns counts wrong passwords since the last sign-in; while
	// SignInWaitUntil is ahead, sign-in is refused (clinic.SignInBackoff).
	FailedSignIns   int
	SignInWaitUntil *time.Time
	// Two-factor sign-in: TOTPSecret is on since TOTPEnabledAt;
	// TOTPPendingSecret is one being enrolled; TOTPLastStep the time step
	// of the last code taken, so that no code is taken twice.
	TOTPSecret        Sealed     `gorm:"column:totp_secret"`
	TOTPPendingSecret Sealed     `gorm:"column:totp_pending_secret"`
	TOTPEnabledAt     *time.Time `gorm:"column:totp_enabled_at"`
	TOTPLastStep      int64      `gorm:"column:totp_last_step"`
}

// MFAEnabled says whether the person signs in with a second factor.
func (u User) MFAEnabled() bool { return u.TOTPEnabledAt != nil }

// RecoveryCode is one single-use code that stands in for the second factor
// when the authenticator is lost; only its hash is kept.
type RecoveryCode struct {
	UserID   string `gorm:"primaryKey"`
	CodeHash string `gorm:"primaryKey"`
	UsedAt   *time.Time
}

// MFAChallenge is a sign-in whose password was right, waiting for its
// second factor: a short-lived token, good for a few tries.
type MFAChallenge struct {
	ID        string `gorm:"primaryKey"`
	UserID    string
	TokenHash string
	ExpiresAt time.Time
	Attempts  int
	UsedAt    *time.Time
}

// TableName: GORM would say "mfa_challenges" too, but says it with an
// acronym rule that could change.
func (MFAChallenge) TableName() string { return "mfa_challenges" }

// Active tells a person who may still sign in.
func (u User) Active() bool { return u.DeactivatedAt == nil }

// Actor is the user as the domain's rules see them.
func (u User) Actor() clinic.Actor { return clinic.Actor{ID: u.ID, ClinicID: u.ClinicID, Role: u.Role} }

// Room is a place patients wait in and are seen from: a provider's personal
// room, or a shared room whose members act for it.
type Room struct {
	ID        string `gorm:"primaryKey"`
	ClinicID  string
	Kind      RoomKind
	Name      string
	Slug      string
	OwnerID   *string
	CreatedAt time.Time
	// DeletedAt: archived. ClosedAt: a personal room whose provider was
	// deactivated; it takes no check-ins.
	DeletedAt *time.Time
	ClosedAt  *time.Time
}

// Facts are the room as the domain's rules see it.
func (r Room) Facts() clinic.Room {
	f := clinic.Room{ID: r.ID, ClinicID: r.ClinicID, Kind: r.Kind, Deleted: r.DeletedAt != nil, Closed: r.ClosedAt != nil}
	if r.OwnerID != nil {
		f.OwnerID = *r.OwnerID
	}
	return f
}

// RoomMember gives a user access to a shared room.
type RoomMember struct {
	RoomID string `gorm:"primaryKey"`
	UserID string `gorm:"primaryKey"`
}

// Visit is the database projection of one visit workflow: lists are read
// from here, never from workflow queries. A visit has exactly one room.
type Visit struct {
	ID                    string `gorm:"primaryKey"`
	ClinicID              string
	RoomID                string
	State                 VisitState
	PatientName           Sealed
	TokenHash             string
	CheckedInAt           time.Time
	CallID                *string
	TransferredByID       *string
	TransferredFromRoomID *string
	TransferNote          Sealed
	Transfers             int
	EndedAt               *time.Time
	EndReason             string
	UpdatedAt             time.Time
	// PurgedAt: the retention period ran out and the patient's data was
	// removed; the row keeps its ids and times.
	PurgedAt *time.Time
	// ArrivalInRow, at creation: the visit reads its patient's first page
	// from its row (ArrivalExpected; see Visits.Arrival). Written with the
	// row, so a check-in is one statement fewer; never read back into this
	// struct (Arrival and Arrived read the column).
	ArrivalInRow ArrivalStage `gorm:"column:patient_arrival;<-:create;->:false"`
}

// ArrivalStage is how a visit learns that its patient's page has opened: 0,
// by a signal (visits from before migration 13); ArrivalExpected, from its
// row, not yet; 2, from its row, arrived.
type ArrivalStage int16

// ArrivalExpected: the patient's first page will be recorded in the row.
const ArrivalExpected ArrivalStage = 1

// Call is a video call on one media node.
type Call struct {
	ID        string `gorm:"primaryKey"`
	ClinicID  string
	RoomID    string
	Kind      CallKind
	MediaNode string
	StartedAt time.Time
	EndedAt   *time.Time
}

// CallParticipant is a provider in a call: who admitted a patient into it,
// or joined it.
type CallParticipant struct {
	CallID   string `gorm:"primaryKey"`
	UserID   string `gorm:"primaryKey"`
	JoinedAt time.Time
}

// AppSession is an app (shared notes, payment request…) open in a call. Its
// Data is the session's own data: discarded when the app closes, never handed
// to another provider.
type AppSession struct {
	ID         string `gorm:"primaryKey"`
	CallID     string
	App        string
	Data       *Sealed
	OpenedByID string
	OpenedAt   time.Time
	ClosedAt   *time.Time
}

// AuditEvent is one append-only row of the audit trail. The database refuses
// updates and deletes of this table.
type AuditEvent struct {
	ID           int64 `gorm:"primaryKey;autoIncrement"`
	ClinicID     string
	At           time.Time
	ActorKind    string
	ActorID      string
	Action       string
	VisitID      *string
	RoomID       *string
	TargetRoomID *string
	Detail       string
	// Address is the client address of the request that did it ("" for
	// what the system did); TargetUserID the person an administrative
	// change was about.
	Address      string
	TargetUserID *string
}

// Invitation asks someone to join a clinic with a role: a single-use link
// whose token only the invited person's mail (or the inviter's screen) holds.
type Invitation struct {
	ID          string `gorm:"primaryKey"`
	ClinicID    string
	Email       string
	Role        Role
	TokenHash   string
	InvitedByID string
	CreatedAt   time.Time
	ExpiresAt   time.Time
	AcceptedAt  *time.Time
	RevokedAt   *time.Time
	UserID      *string
}

// PasswordReset is a single-use link to set a new password.
type PasswordReset struct {
	ID        string `gorm:"primaryKey"`
	UserID    string
	TokenHash string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// OldSlug is a room's earlier link, still leading to it until
// RetiredAt + clinic.OldSlugRedirects.
type OldSlug struct {
	Slug      string `gorm:"primaryKey"`
	RoomID    string
	RetiredAt time.Time
}

// CompletedTransfer records that a transfer moved its patient: a transfer
// step run again after the move (a worker lost mid-task) finds it here.
type CompletedTransfer struct {
	VisitID     string `gorm:"primaryKey"`
	TransferID  string `gorm:"primaryKey"`
	CompletedAt time.Time
}

// Audience says who an event is for: the patient of VisitID, or the
// providers with access to RoomID. One happening can write a row for each
// audience, each with the text that side must see.
type Audience string

const (
	AudiencePatient Audience = "patient"
	AudienceRoom    Audience = "room"
)

// Event is a row of the outbox: stored first, then fanned out to live
// streams. Its ID increases monotonically and is the SSE event id.
type Event struct {
	ID        int64 `gorm:"primaryKey;autoIncrement"`
	ClinicID  string
	Type      string
	Audience  Audience
	VisitID   *string
	RoomID    *string
	Payload   Sealed
	CreatedAt time.Time
}

// Session is a provider's signed-in session; only the token's hash is kept.
type Session struct {
	ID         string `gorm:"primaryKey"`
	TokenHash  string
	UserID     string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastSeenAt time.Time
	RevokedAt  *time.Time
	// Address and UserAgent say where it was opened, for its person.
	Address   string
	UserAgent string
}

// Presence is one open live-event stream of a provider.
type Presence struct {
	ConnectionID string `gorm:"primaryKey"`
	UserID       string
	LastSeenAt   time.Time
}

// TableName keeps the table name singular, as the migration has it.
func (Presence) TableName() string { return "presence" }
