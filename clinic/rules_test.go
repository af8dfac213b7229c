package clinic

import (
	"errors"
	"strings"
	"testing"
)

func TestRules(t *testing.T) {
	member := Actor{ID: "u1", ClinicID: "c1", Role: RoleMember}
	staff := Actor{ID: "u2", ClinicID: "c1", Role: RoleStaff}
	for name, c := range map[string]struct {
		err  error
		kind Kind // "" : allowed
	}{
		"premium, from a room they act for, may transfer": {MayTransfer(staff, PlanPremium, true), ""},
		"premium, from a room they do not act for":        {MayTransfer(member, PlanPremium, false), Forbidden},
		"pro may not":             {MayTransfer(member, PlanPro, true), PlanRequired},
		"free may not":            {MayTransfer(member, PlanFree, true), PlanRequired},
		"an unknown plan may not": {MayTransfer(member, Plan("gold"), true), PlanRequired},
		"free, without access: access is said first": {MayTransfer(member, PlanFree, false), Forbidden},
		"a live room of the clinic":                  {TransferTarget("c1", "room-a", &Room{ID: "room-b", ClinicID: "c1", Kind: RoomShared}), ""},
		"no such target room":                        {TransferTarget("c1", "room-a", nil), NotFound},
		"another clinic's room":                      {TransferTarget("c1", "room-a", &Room{ID: "room-b", ClinicID: "c2"}), NotFound},
		"a deleted room":                             {TransferTarget("c1", "room-a", &Room{ID: "room-b", ClinicID: "c1", Deleted: true}), NotFound},
		"the patient's own room as a target":         {TransferTarget("c1", "room-a", &Room{ID: "room-a", ClinicID: "c1"}), SameRoom},
		"a name":                                     {second(PatientName("  Alex Rivera ")), ""},
		"no name":                                    {second(PatientName("   ")), Invalid},
		"a 100-character name":                       {second(PatientName(strings.Repeat("é", MaxPatientNameLength))), ""},
		"a 101-character name":                       {second(PatientName(strings.Repeat("x", MaxPatientNameLength+1))), Invalid},
		"a name with a control character":            {second(PatientName("Alex\x00Rivera")), Invalid},
		"consent":                                    {CheckConsent(true), ""},
		"no consent":                                 {CheckConsent(false), Invalid},
		"the notes app":                              {CheckApp("notes", "x"), ""},
		"an unknown app":                             {CheckApp("chess", ""), Invalid},
		"too much app data":                          {CheckApp("notes", strings.Repeat("x", MaxAppData+1)), Invalid},
		"an admin reads the audit trail":             {Require(RoleAdmin, ReadAudit), ""},
		"an owner reads the audit trail":             {Require(RoleOwner, ReadAudit), ""},
		"a member does not":                          {Require(RoleMember, ReadAudit), Forbidden},
		"staff do not":                               {Require(RoleStaff, ReadAudit), Forbidden},
		"no note":                                    {CheckNote(""), ""},
		"a 500-character note":                       {CheckNote(strings.Repeat("é", MaxNoteLength)), ""},
		"a 501-character note":                       {CheckNote(strings.Repeat("x", MaxNoteLength+1)), Invalid},
		"another room":                               {CheckTarget("room-a", "room-b"), ""},
		"the room the patient is in":                 {CheckTarget("room-a", "room-a"), SameRoom},
	} {
		t.Run(name, func(t *testing.T) { checkRejection(t, c.err, c.kind) })
	}
	if !HasSharedRooms(PlanPremium) || HasSharedRooms(PlanPro) || HasSharedRooms(PlanFree) {
		t.Fatal("shared rooms are Premium's")
	}
}

func second(_ string, err error) error { return err }

// checkRejection requires err to be allowed (kind "") or a rejection of
// kind with a message, which it returns.
func checkRejection(t *testing.T, err error, kind Kind) *Rejection {
	t.Helper()
	if kind == "" {
		if err != nil {
			t.Fatalf("allowed, got %v", err)
		}
		return nil
	}
	var r *Rejection
	if !errors.As(err, &r) || r.Kind != kind || r.Message == "" {
		t.Fatalf("want a %s rejection with a message, got %#v", kind, err)
	}
	return r
}

// Who may act for a room: the table a change to "who may transfer" edits.
func TestMayActFor(t *testing.T) {
	lee := Actor{ID: "lee", ClinicID: "c1", Role: RoleMember}
	staff := Actor{ID: "ortiz", ClinicID: "c1", Role: RoleStaff}
	stranger := Actor{ID: "grant", ClinicID: "c2", Role: RoleOwner}
	leeRoom := Room{ID: "r1", ClinicID: "c1", Kind: RoomPersonal, OwnerID: "lee"}
	reception := Room{ID: "r2", ClinicID: "c1", Kind: RoomShared}
	for _, c := range []struct {
		name   string
		actor  Actor
		room   Room
		member bool
		want   bool
	}{
		{"the owner of a personal room", lee, leeRoom, false, true},
		{"someone else in the clinic, whatever their role", staff, leeRoom, false, false},
		{"a member of a shared room, staff too", staff, reception, true, true},
		{"a non-member of a shared room", lee, reception, false, false},
		{"another clinic's user, even listed as a member", stranger, reception, true, false},
		{"the owner of a deleted room", lee, Room{ID: "r1", ClinicID: "c1", Kind: RoomPersonal, OwnerID: "lee", Deleted: true}, false, false},
		{"a personal room without an owner", lee, Room{ID: "r3", ClinicID: "c1", Kind: RoomPersonal}, false, false},
		{"a departed provider's closed room: not its owner any more", lee, Room{ID: "r1", ClinicID: "c1", Kind: RoomPersonal, OwnerID: "lee", Closed: true}, false, false},
		{"a departed provider's closed room: an admin sees its patients", Actor{ID: "kim", ClinicID: "c1", Role: RoleAdmin}, Room{ID: "r1", ClinicID: "c1", Kind: RoomPersonal, OwnerID: "lee", Closed: true}, false, true},
		{"a departed provider's closed room: staff do not", staff, Room{ID: "r1", ClinicID: "c1", Kind: RoomPersonal, OwnerID: "lee", Closed: true}, false, false},
	} {
		if got := MayActFor(c.actor, c.room, c.member); got != c.want {
			t.Errorf("%s: MayActFor = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestEveryKindHasACode(t *testing.T) {
	for _, k := range []Kind{Invalid, NotFound, Forbidden, PlanRequired, Conflict, SameRoom, TargetRoomGone, TransferFailed} {
		if Code(k) == "" {
			t.Errorf("kind %s has no code", k)
		}
	}
	if !IsRuleBreak(SameRoom) || IsRuleBreak(TargetRoomGone) || IsRuleBreak(TransferFailed) {
		t.Error("a target room gone mid-transfer is a failure to carry it out, not a rule's no")
	}
}

func TestDisplayName(t *testing.T) {
	for _, c := range []struct {
		kind                 RoomKind
		room, owner, patient string
	}{
		{RoomPersonal, "Lee's room", "Dr. Maya Lee", "Dr. Maya Lee"},
		{RoomPersonal, "Orphaned room", "", "Orphaned room"},
		{RoomShared, "Reception", "Sam Ortiz", "Reception"},
		{RoomShared, "Urgent Care", "", "Urgent Care"},
	} {
		if got := DisplayName(c.kind, c.room, c.owner); got != c.patient {
			t.Errorf("%s room %q owned by %q: patients read %q, want %q", c.kind, c.room, c.owner, got, c.patient)
		}
	}
}
