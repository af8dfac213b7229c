package clinic

import (
	"strings"
	"testing"
	"time"
)

// TestPermissionTable is who may run the clinic, as the README's table
// says: owners everything; admins everything but owners and the plan;
// members and staff nothing beyond their own profile.
func TestPermissionTable(t *testing.T) {
	want := map[Role]string{RoleOwner: "people owners rooms plan audit security", RoleAdmin: "people rooms audit", RoleMember: "", RoleStaff: ""}
	for role, powers := range want {
		for _, p := range AllPowers {
			if got := Has(role, p); got != strings.Contains(powers, string(p)) {
				t.Errorf("%s has %s: %v", role, p, got)
			}
		}
	}
}

func TestAdministrationRules(t *testing.T) {
	owner := Actor{ID: "o1", ClinicID: "c1", Role: RoleOwner}
	admin := Actor{ID: "a1", ClinicID: "c1", Role: RoleAdmin}
	member := Actor{ID: "m1", ClinicID: "c1", Role: RoleMember}
	shared := Room{ID: "r1", ClinicID: "c1", Kind: RoomShared}
	personal := Room{ID: "r2", ClinicID: "c1", Kind: RoomPersonal, OwnerID: "m1"}
	for name, c := range map[string]struct {
		err  error
		kind Kind
		code string
	}{
		"an admin invites a member":                    {MayAssignRole(RoleAdmin, "", RoleMember, 1), "", ""},
		"an admin cannot invite an owner":              {MayAssignRole(RoleAdmin, "", RoleOwner, 1), Forbidden, ""},
		"an owner invites an owner":                    {MayAssignRole(RoleOwner, "", RoleOwner, 1), "", ""},
		"a member invites nobody":                      {MayAssignRole(RoleMember, "", RoleStaff, 1), Forbidden, ""},
		"an admin cannot demote an owner":              {MayAssignRole(RoleAdmin, RoleOwner, RoleMember, 2), Forbidden, ""},
		"the last owner stays an owner":                {MayAssignRole(RoleOwner, RoleOwner, RoleAdmin, 1), Conflict, "last_owner"},
		"one of two owners may step down":              {MayAssignRole(RoleOwner, RoleOwner, RoleAdmin, 2), "", ""},
		"nobody deactivates themselves":                {MayDeactivate(owner, "o1", RoleOwner, 2), Conflict, ""},
		"the last owner is not deactivated":            {MayDeactivate(Actor{ID: "o2", Role: RoleOwner}, "o1", RoleOwner, 1), Conflict, "last_owner"},
		"an admin deactivates a member":                {MayDeactivate(admin, "m1", RoleMember, 1), "", ""},
		"an admin does not deactivate an owner":        {MayDeactivate(admin, "o1", RoleOwner, 2), Forbidden, ""},
		"a provider renames their own room":            {MayEditRoom(member, personal), "", ""},
		"a member does not rename a shared room":       {MayEditRoom(member, shared), Forbidden, ""},
		"an admin manages shared rooms on Premium":     {MayManageSharedRooms(RoleAdmin, PlanPremium), "", ""},
		"shared rooms need Premium":                    {MayManageSharedRooms(RoleOwner, PlanPro), PlanRequired, ""},
		"an empty room is archived":                    {MayArchive(shared, 0, ""), "", ""},
		"waiting patients need a room to go to":        {MayArchive(shared, 2, ""), Conflict, "patients_waiting"},
		"waiting patients moved elsewhere":             {MayArchive(shared, 2, "r9"), "", ""},
		"not moved into the room being archived":       {MayArchive(shared, 2, "r1"), Invalid, ""},
		"a personal room is not archived":              {MayArchive(personal, 0, ""), Conflict, ""},
		"a downgrade hiding shared rooms is confirmed": {MayChangePlan(PlanPremium, PlanPro, 1, false), Conflict, "confirm_required"},
		"a confirmed downgrade":                        {MayChangePlan(PlanPremium, PlanFree, 1, true), "", ""},
		"a downgrade without shared rooms":             {MayChangePlan(PlanPremium, PlanPro, 0, false), "", ""},
		"an upgrade":                                   {MayChangePlan(PlanFree, PlanPremium, 0, false), "", ""},
		"a slug":                                       {second(CheckSlug(" Dr-Ada-Rivers ")), "", ""},
		"a reserved slug":                              {second(CheckSlug("api")), Invalid, ""},
		"a short slug":                                 {second(CheckSlug("ab")), Invalid, ""},
		"a slug with a double hyphen":                  {second(CheckSlug("dr--ada")), Invalid, ""},
		"a slug with a space":                          {second(CheckSlug("dr ada")), Invalid, ""},
		"a slug ending in a hyphen":                    {second(CheckSlug("dr-ada-")), Invalid, ""},
		"a password":                                   {CheckPassword("password", "Kettle-Umbrella-42"), "", ""},
		"a short password":                             {CheckPassword("password", "Kettle-42"), Invalid, ""},
		"a common password":                            {CheckPassword("password", "Password123"), Invalid, ""},
		"a repeated character":                         {CheckPassword("password", "aaaaaaaaaaaa"), Invalid, ""},
		"a run of digits":                              {CheckPassword("password", "234567890123"), Invalid, ""},
		"a password longer than bcrypt reads":          {CheckPassword("password", strings.Repeat("é", 40)), Invalid, ""},
		"an email":                                     {second(Email(" Ada@Clinic.Example ")), "", ""},
		"not an email":                                 {second(Email("ada")), Invalid, ""},
		"an email with a display name":                 {second(Email("Ada <ada@clinic.example>")), Invalid, ""},
		"a role":                                       {errOf(ParseRole("staff")), "", ""},
		"not a role":                                   {errOf(ParseRole("root")), Invalid, ""},
		"not a plan":                                   {errOf(ParsePlan("gold")), Invalid, ""},
		"a closed room is no transfer target":          {TransferTarget("c1", "r1", &Room{ID: "r2", ClinicID: "c1", Kind: RoomPersonal, Closed: true}), Conflict, ""},
	} {
		t.Run(name, func(t *testing.T) {
			r := checkRejection(t, c.err, c.kind)
			if r != nil && c.code != "" && r.ErrCode() != c.code {
				t.Fatalf("code %q, want %q", r.ErrCode(), c.code)
			}
		})
	}
	if s, _ := CheckSlug(" Dr-Ada-Rivers "); s != "dr-ada-rivers" {
		t.Errorf("slugs are trimmed and lower-cased: %q", s)
	}
	for name, want := range map[string]string{"Dr. Ada Rivers": "dr-ada-rivers", "  Ünïcode Only ": "n-code-only", "Dr.": "room-dr", "API": "room-api"} {
		if got := SlugFrom(name); got != want {
			t.Errorf("SlugFrom(%q) = %q, want %q", name, got, want)
		}
		if _, err := CheckSlug(SlugFrom(name)); err != nil {
			t.Errorf("SlugFrom(%q) is not a valid slug: %v", name, err)
		}
	}
}

func errOf[T any](_ T, err error) error { return err }

func TestSignInBackoff(t *testing.T) {
	for failures, want := range map[int]time.Duration{0: 0, 4: 0, 5: 30 * time.Second, 6: time.Minute, 7: 2 * time.Minute,
		9: 8 * time.Minute, 10: 15 * time.Minute, 50: 15 * time.Minute, 1 << 20: 15 * time.Minute} {
		if got := SignInBackoff(failures); got != want {
			t.Errorf("after %d failures: wait %s, want %s", failures, got, want)
		}
	}
}
