package clinic

import (
	"errors"
	"strings"
	"testing"
)

func TestRules(t *testing.T) {
	for name, c := range map[string]struct {
		err  error
		kind Kind // "" : allowed
	}{
		"premium may transfer":       {MayTransfer(PlanPremium), ""},
		"pro may not":                {MayTransfer(PlanPro), PlanRequired},
		"free may not":               {MayTransfer(PlanFree), PlanRequired},
		"an unknown plan may not":    {MayTransfer(Plan("gold")), PlanRequired},
		"no note":                    {CheckNote(""), ""},
		"a 500-character note":       {CheckNote(strings.Repeat("é", MaxNoteLength)), ""},
		"a 501-character note":       {CheckNote(strings.Repeat("x", MaxNoteLength+1)), Invalid},
		"another room":               {CheckTarget("room-a", "room-b"), ""},
		"the room the patient is in": {CheckTarget("room-a", "room-a"), SameRoom},
	} {
		t.Run(name, func(t *testing.T) {
			if c.kind == "" {
				if c.err != nil {
					t.Fatalf("allowed, got %v", c.err)
				}
				return
			}
			var r *Rejection
			if !errors.As(c.err, &r) || r.Kind != c.kind || r.Message == "" {
				t.Fatalf("want a %s rejection with a message, got %#v", c.kind, c.err)
			}
		})
	}
	if !HasSharedRooms(PlanPremium) || HasSharedRooms(PlanPro) || HasSharedRooms(PlanFree) {
		t.Fatal("shared rooms are Premium's")
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
