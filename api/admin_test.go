package api_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/handoff-telehealth/handoff/api"
	"github.com/handoff-telehealth/handoff/internal/testkit/smtptest"
	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
	"github.com/handoff-telehealth/handoff/internal/testkit/testenv"
	"github.com/handoff-telehealth/handoff/mailer"
	"github.com/handoff-telehealth/handoff/store"
)

const adminPassword = "Kettle-Umbrella-42"

// adminService is the API with sign-up open, on the engine of dsn.
func adminService(t *testing.T, dsn string, tweak func(*api.Deps)) *service {
	e := testenv.StartOn(t, dsn)
	e.StartWorker(nil)
	return startAPI(t, e, func(d *api.Deps) {
		d.OpenSignup, d.AdminRate = true, 1000
		if tweak != nil {
			tweak(d)
		}
	})
}

// founded is a clinic made by sign-up: its owner's token and ids.
type founded struct {
	ownerTok, ownerID, clinicID string
}

func (s *service) found(name string) founded {
	s.t.Helper()
	email := strings.ToLower(strings.ReplaceAll(name, " ", "")) + "@owner.example"
	r := s.do("POST", "/signup", "", map[string]string{"clinicName": name, "ownerName": "Owner of " + name, "email": email, "password": adminPassword})
	require.Equal(s.t, http.StatusCreated, r.Status, r.Raw)
	return founded{ownerTok: r.str("token"), ownerID: r.str("user", "id"), clinicID: r.str("user", "clinicId")}
}

// tokenOf is the token in a link's fragment (#invite=… or #reset=…).
func tokenOf(t *testing.T, link string) string {
	_, tok, ok := strings.Cut(link, "=")
	require.True(t, ok, link)
	return tok
}

// join invites email with role into f's clinic and accepts it: the new
// person's token and id.
func (s *service) join(f founded, email, role string) (string, string) {
	s.t.Helper()
	inv := s.do("POST", "/invitations", f.ownerTok, map[string]string{"email": email, "role": role})
	require.Equal(s.t, http.StatusCreated, inv.Status, inv.Raw)
	acc := s.do("POST", "/invitations/by-token/"+tokenOf(s.t, inv.str("link"))+"/accept", "", map[string]string{"name": "Person " + email, "password": adminPassword})
	require.Equal(s.t, http.StatusCreated, acc.Status, acc.Raw)
	return acc.str("token"), acc.str("user", "id")
}

var fixtureHash = func() string {
	h, _ := bcrypt.GenerateFromPassword([]byte(adminPassword), bcrypt.MinCost)
	return string(h)
}()

// person adds someone to a clinic straight in the database (the matrix
// needs many, fresh for each request).
func (s *service) person(clinicID string, role store.Role) store.User {
	s.t.Helper()
	u := store.User{ID: uuid.NewString(), ClinicID: clinicID, Email: uuid.NewString()[:12] + "@fixture.example", FullName: "Fixture", DisplayName: "Fixture",
		Role: role, PasswordHash: fixtureHash, CreatedAt: time.Now().UTC()}
	require.NoError(s.t, s.db.InTx(context.Background(), func(q store.Queries) error { _, err := q.AddUser(u, time.Now().UTC()); return err }))
	return u
}

// TestWhoMayRunTheClinic is the matrix: every administrative route, asked
// by each role of the clinic and by another clinic's owner, answers the
// status the permission table says, on both database engines.
func TestWhoMayRunTheClinic(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		s := adminService(t, dsn, nil)
		f := s.found("Matrix Clinic")
		require.Equal(t, http.StatusOK, s.do("PUT", "/clinic/plan", f.ownerTok, map[string]string{"plan": "premium"}).Status)
		other := s.found("Other Clinic")
		callers := map[string]string{"owner": f.ownerTok, "other clinic's owner": other.ownerTok}
		for _, role := range []string{"admin", "member", "staff"} {
			callers[role], _ = s.join(f, role+"@matrix.example", role)
		}
		// A second owner, so an owner may be demoted.
		_, secondOwner := s.join(f, "second-owner@matrix.example", "owner")

		type cell struct {
			name   string
			call   func(tok string) response
			expect map[string]int // by caller; an absent caller: 403
		}
		n := 0
		fresh := func() string { n++; return fmt.Sprintf("r%d-%s", n, uuid.NewString()[:6]) }
		room := func() string {
			r := s.do("POST", "/rooms", f.ownerTok, map[string]string{"name": "Room " + fresh(), "slug": fresh()})
			require.Equal(t, http.StatusCreated, r.Status, r.Raw)
			return r.str("room", "id")
		}
		invitation := func() string {
			r := s.do("POST", "/invitations", f.ownerTok, map[string]string{"email": fresh() + "@invitee.example", "role": "member"})
			require.Equal(t, http.StatusCreated, r.Status, r.Raw)
			return r.str("invitation", "id")
		}
		member := func() string { return s.person(f.clinicID, store.RoleMember).ID }
		ok := func(status int, others ...string) map[string]int {
			m := map[string]int{"owner": status, "admin": status, "other clinic's owner": http.StatusNotFound}
			for _, o := range others {
				m[o] = http.StatusForbidden
			}
			return m
		}
		theirOwn := func(status int) map[string]int { // no id: another clinic's owner gets its own clinic's
			m := ok(status)
			m["other clinic's owner"] = status
			return m
		}
		ownersOnly := func(status int) map[string]int {
			m := ok(status, "admin")
			m["other clinic's owner"] = status
			return m
		}
		cells := []cell{
			{"GET /clinic", func(tok string) response { return s.do("GET", "/clinic", tok, nil) }, theirOwn(200)},
			{"PUT /clinic/plan", func(tok string) response {
				return s.do("PUT", "/clinic/plan", tok, map[string]string{"plan": "premium"})
			}, ownersOnly(200)},
			{"PUT /clinic/waiting", func(tok string) response {
				return s.do("PUT", "/clinic/waiting", tok, map[string]int{"waitAlertMinutes": 20})
			}, theirOwn(200)},
			{"PUT /clinic/security", func(tok string) response {
				return s.do("PUT", "/clinic/security", tok, map[string]bool{"requireMfa": false})
			}, ownersOnly(200)},
			{"POST /people/{id}/mfa-reset", func(tok string) response {
				id := member()
				require.NoError(t, s.db.Gorm().Exec("UPDATE users SET totp_enabled_at = ? WHERE id = ?", time.Now().UTC(), id).Error)
				return s.do("POST", "/people/"+id+"/mfa-reset", tok, nil)
			}, ok(204)},
			{"GET /people", func(tok string) response { return s.do("GET", "/people", tok, nil) }, theirOwn(200)},
			{"GET /audit", func(tok string) response { return s.do("GET", "/audit", tok, nil) }, theirOwn(200)},
			{"POST /invitations", func(tok string) response {
				return s.do("POST", "/invitations", tok, map[string]string{"email": fresh() + "@invitee.example", "role": "member"})
			}, theirOwn(201)},
			{"POST /invitations as owner", func(tok string) response {
				return s.do("POST", "/invitations", tok, map[string]string{"email": fresh() + "@invitee.example", "role": "owner"})
			}, ownersOnly(201)},
			{"POST /invitations/{id}/resend", func(tok string) response { return s.do("POST", "/invitations/"+invitation()+"/resend", tok, nil) }, ok(200)},
			{"DELETE /invitations/{id}", func(tok string) response { return s.do("DELETE", "/invitations/"+invitation(), tok, nil) }, ok(204)},
			{"PATCH /people/{id}", func(tok string) response {
				return s.do("PATCH", "/people/"+member(), tok, map[string]string{"role": "staff"})
			}, ok(200)},
			{"PATCH /people/{owner}", func(tok string) response {
				r := s.do("PATCH", "/people/"+secondOwner, tok, map[string]string{"role": "owner"}) // a no-op change still needs the power
				return r
			}, func() map[string]int { m := ok(200, "admin"); return m }()},
			{"POST /people/{id}/deactivate", func(tok string) response { return s.do("POST", "/people/"+member()+"/deactivate", tok, nil) }, ok(200)},
			{"POST /people/{id}/reset-link", func(tok string) response { return s.do("POST", "/people/"+member()+"/reset-link", tok, nil) }, ok(201)},
			{"POST /rooms", func(tok string) response {
				return s.do("POST", "/rooms", tok, map[string]string{"name": "Room " + fresh(), "slug": fresh()})
			}, theirOwn(201)}, // the other clinic's owner went Premium above
			{"PATCH /rooms/{id}", func(tok string) response {
				return s.do("PATCH", "/rooms/"+room(), tok, map[string]string{"name": "Renamed " + fresh()})
			}, ok(200)},
			{"PUT /rooms/{id}/members/{userId}", func(tok string) response { return s.do("PUT", "/rooms/"+room()+"/members/"+member(), tok, nil) }, ok(204)},
			{"DELETE /rooms/{id}/members/{userId}", func(tok string) response {
				r, m := room(), member()
				require.Equal(t, http.StatusNoContent, s.do("PUT", "/rooms/"+r+"/members/"+m, f.ownerTok, nil).Status)
				return s.do("DELETE", "/rooms/"+r+"/members/"+m, tok, nil)
			}, ok(204)},
			{"POST /rooms/{id}/archive", func(tok string) response { return s.do("POST", "/rooms/"+room()+"/archive", tok, nil) }, ok(200)},
		}
		for _, c := range cells {
			for who, tok := range callers {
				want, found := c.expect[who]
				if !found {
					want = http.StatusForbidden
				}
				r := c.call(tok)
				require.Equal(t, want, r.Status, "%s by %s: %s", c.name, who, r.Raw)
			}
		}
	})
}

// A clinic keeps an owner; nobody deactivates themselves; an admin cannot
// touch an owner.
func TestTheLastOwnerStays(t *testing.T) {
	s := adminService(t, testdb.PostgresDSN(t), nil)
	f := s.found("Last Owner Clinic")
	adminTok, _ := s.join(f, "admin@lastowner.example", "admin")

	r := s.do("PATCH", "/people/"+f.ownerID, f.ownerTok, map[string]string{"role": "admin"})
	require.Equal(t, http.StatusConflict, r.Status, r.Raw)
	require.Equal(t, "last_owner", r.str("error", "code"))
	r = s.do("POST", "/people/"+f.ownerID+"/deactivate", f.ownerTok, nil)
	require.Equal(t, http.StatusConflict, r.Status, r.Raw)
	r = s.do("POST", "/people/"+f.ownerID+"/deactivate", adminTok, nil)
	require.Equal(t, http.StatusForbidden, r.Status, r.Raw)
	require.Equal(t, http.StatusOK, s.do("GET", "/me", f.ownerTok, nil).Status, "the owner is still in")

	// With a second owner, the first may step down.
	_, second := s.join(f, "second@lastowner.example", "owner")
	r = s.do("PATCH", "/people/"+f.ownerID, f.ownerTok, map[string]string{"role": "admin"})
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	r = s.do("PATCH", "/people/"+second, f.ownerTok, map[string]string{"role": "member"})
	require.Equal(t, http.StatusForbidden, r.Status, "now an admin, they cannot demote an owner: %s", r.Raw)
}

// Deactivation takes access away at once and loses no patient.
func TestDeactivationEndsAccessAndKeepsPatients(t *testing.T) {
	s := adminService(t, testdb.PostgresDSN(t), nil)
	f := s.found("Departures Clinic")
	require.Equal(t, http.StatusOK, s.do("PUT", "/clinic/plan", f.ownerTok, map[string]string{"plan": "premium"}).Status)
	memberTok, memberID := s.join(f, "leaving@departures.example", "member")
	other := s.do("POST", "/auth/login", "", map[string]string{"email": "leaving@departures.example", "password": adminPassword}).str("token")
	events := s.stream(memberTok, "")

	people := s.do("GET", "/people", f.ownerTok, nil)
	var slug, roomID string
	for _, p := range people.Body["people"].([]any) {
		if p.(map[string]any)["id"] == memberID {
			roomID = p.(map[string]any)["personalRoomId"].(string)
		}
	}
	rooms := s.do("GET", "/rooms", f.ownerTok, nil)
	for _, r := range rooms.Body["rooms"].([]any) {
		if r.(map[string]any)["id"] == roomID {
			slug = r.(map[string]any)["slug"].(string)
		}
	}
	require.NotEmpty(t, slug)
	visit, _ := s.checkIn(slug, "Pat Left Behind")

	r := s.do("POST", "/people/"+memberID+"/deactivate", f.ownerTok, nil)
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	require.Equal(t, false, r.Body["person"].(map[string]any)["active"])

	// Every session ends; the live dashboard is told.
	require.Equal(t, "deactivated", events.next(t, "session.ended").Data["reason"])
	for _, tok := range []string{memberTok, other} {
		r = s.do("GET", "/me", tok, nil)
		require.Equal(t, http.StatusUnauthorized, r.Status, r.Raw)
		require.Equal(t, "deactivated", r.str("error", "code"))
	}
	r = s.do("POST", "/auth/login", "", map[string]string{"email": "leaving@departures.example", "password": adminPassword})
	require.Equal(t, http.StatusUnauthorized, r.Status, r.Raw)

	// The room's link tells a new patient, and takes no check-in.
	pub := s.do("GET", "/checkin/"+slug, "", nil)
	require.Equal(t, false, pub.Body["open"])
	require.Contains(t, pub.str("closedMessage"), "no longer seeing patients")
	r = s.do("POST", "/checkin/"+slug, "", map[string]any{"name": "Pat Late", "consent": true})
	require.Equal(t, http.StatusConflict, r.Status, r.Raw)
	require.Equal(t, "room_closed", r.str("error", "code"))

	// The patient already waiting is not lost: the owner sees and moves them.
	waiting := s.do("GET", "/rooms/"+roomID+"/waiting", f.ownerTok, nil)
	require.Equal(t, http.StatusOK, waiting.Status, waiting.Raw)
	require.Len(t, waiting.Body["waiting"], 1)
	me := s.do("GET", "/me", f.ownerTok, nil)
	ownerRoom := ""
	for _, id := range me.Body["roomIds"].([]any) {
		if id != roomID {
			ownerRoom = id.(string)
		}
	}
	tr := s.do("POST", "/visits/"+visit+"/transfer", f.ownerTok, map[string]string{"targetRoomId": ownerRoom})
	require.Equal(t, http.StatusOK, tr.Status, tr.Raw)
	require.Equal(t, ownerRoom, s.env.Visit(visit).RoomID)
	// Nobody transfers into the closed room.
	r = s.do("POST", "/visits/"+visit+"/transfer", f.ownerTok, map[string]string{"targetRoomId": roomID})
	require.Equal(t, http.StatusConflict, r.Status, r.Raw)

	audit := s.do("GET", "/audit?action=user.&actorId="+memberID, f.ownerTok, nil)
	row := audit.Body["audit"].([]any)[0].(map[string]any)
	require.Equal(t, "user.deactivated", row["action"], audit.Raw)
	require.Equal(t, f.ownerID, row["actorId"], "who")
	require.Equal(t, "127.0.0.1", row["address"], "from which address")
	require.Equal(t, memberID, row["targetUserId"], "about whom")
}

// Invitations: single use, resending replaces the link, revoking ends it;
// of two racing accepts exactly one wins.
func TestInvitationLinks(t *testing.T) {
	s := adminService(t, testdb.PostgresDSN(t), nil)
	f := s.found("Invites Clinic")
	inv := s.do("POST", "/invitations", f.ownerTok, map[string]string{"email": "New.Person@Invites.example", "role": "staff"})
	require.Equal(t, http.StatusCreated, inv.Status, inv.Raw)
	require.Equal(t, "new.person@invites.example", inv.str("invitation", "email"))
	require.Equal(t, false, inv.Body["emailed"])
	first := tokenOf(t, inv.str("link"))
	require.GreaterOrEqual(t, len(first), 3+43, "256 bits, base64")
	again := s.do("POST", "/invitations", f.ownerTok, map[string]string{"email": "new.person@invites.example", "role": "staff"})
	require.Equal(t, http.StatusConflict, again.Status, again.Raw)
	require.Equal(t, "already_invited", again.str("error", "code"))

	view := s.do("GET", "/invitations/by-token/"+first, "", nil)
	require.Equal(t, http.StatusOK, view.Status, view.Raw)
	require.Equal(t, "Invites Clinic", view.str("clinic", "name"))

	resent := s.do("POST", "/invitations/"+inv.str("invitation", "id")+"/resend", f.ownerTok, nil)
	require.Equal(t, http.StatusOK, resent.Status, resent.Raw)
	second := tokenOf(t, resent.str("link"))
	require.NotEqual(t, first, second)
	r := s.do("GET", "/invitations/by-token/"+first, "", nil)
	require.Equal(t, http.StatusNotFound, r.Status, "the old link stops working: %s", r.Raw)
	require.Equal(t, "link_invalid", r.str("error", "code"))

	// Bad input changes nothing: the link still works after it.
	for _, body := range []map[string]string{{"name": "", "password": adminPassword}, {"name": "Sam", "password": "short"}, {"name": "Sam", "password": "password123"}} {
		r = s.do("POST", "/invitations/by-token/"+second+"/accept", "", body)
		require.Equal(t, http.StatusBadRequest, r.Status, r.Raw)
	}
	var wg sync.WaitGroup
	statuses := make([]int, 4)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = s.do("POST", "/invitations/by-token/"+second+"/accept", "", map[string]string{"name": "Sam Racer", "password": adminPassword}).Status
		}()
	}
	wg.Wait()
	won := 0
	for _, st := range statuses {
		if st == http.StatusCreated {
			won++
		} else {
			require.Contains(t, []int{http.StatusNotFound, http.StatusConflict}, st)
		}
	}
	require.Equal(t, 1, won, "exactly one accept wins: %v", statuses)
	people := s.do("GET", "/people", f.ownerTok, nil)
	require.Len(t, people.Body["people"], 2)
	require.Empty(t, people.Body["invitations"])

	// An expired invitation's link is dead, and so is a revoked one's.
	late := s.do("POST", "/invitations", f.ownerTok, map[string]string{"email": "late@invites.example", "role": "member"})
	require.NoError(t, s.db.Gorm().Exec(`UPDATE invitations SET expires_at = ? WHERE id = ?`, time.Now().UTC().Add(-time.Minute), late.str("invitation", "id")).Error)
	r = s.do("GET", "/invitations/by-token/"+tokenOf(t, late.str("link")), "", nil)
	require.Equal(t, http.StatusNotFound, r.Status, r.Raw)
	require.Equal(t, "link_invalid", r.str("error", "code"))
	rev := s.do("POST", "/invitations", f.ownerTok, map[string]string{"email": "withdrawn@invites.example", "role": "member"})
	require.Equal(t, http.StatusNoContent, s.do("DELETE", "/invitations/"+rev.str("invitation", "id"), f.ownerTok, nil).Status)
	r = s.do("POST", "/invitations/by-token/"+tokenOf(t, rev.str("link"))+"/accept", "", map[string]string{"name": "Too Late", "password": adminPassword})
	require.Equal(t, http.StatusNotFound, r.Status, r.Raw)
}

// Passwords: the rules, the current password, other sessions ending, and a
// reset link issued by an admin (no mail configured).
func TestPasswords(t *testing.T) {
	s := adminService(t, testdb.SQLiteDSN(t), nil)
	f := s.found("Password Clinic")
	other := s.do("POST", "/auth/login", "", map[string]string{"email": "passwordclinic@owner.example", "password": adminPassword})
	require.Equal(t, http.StatusOK, other.Status, other.Raw)
	for body, code := range map[[2]string]string{
		{"wrong-current-pw", "Another-Good-Pass-7"}: "wrong_password",
		{adminPassword, "short"}:                    "bad_request",
		{adminPassword, "qwertyuiop"}:               "bad_request",
		{adminPassword, adminPassword}:              "bad_request",
	} {
		r := s.do("POST", "/me/password", f.ownerTok, map[string]string{"currentPassword": body[0], "newPassword": body[1]})
		require.Equal(t, http.StatusBadRequest, r.Status, r.Raw)
		require.Equal(t, code, r.str("error", "code"), r.Raw)
	}
	require.Equal(t, http.StatusOK, s.do("GET", "/me", other.str("token"), nil).Status, "a refused change ends nothing")
	r := s.do("POST", "/me/password", f.ownerTok, map[string]string{"currentPassword": adminPassword, "newPassword": "Another-Good-Pass-7"})
	require.Equal(t, http.StatusNoContent, r.Status, r.Raw)
	require.Equal(t, http.StatusOK, s.do("GET", "/me", f.ownerTok, nil).Status, "this session stays")
	require.Equal(t, http.StatusUnauthorized, s.do("GET", "/me", other.str("token"), nil).Status, "every other session ends")

	// An admin's reset link, without mail: single use, signs the person in.
	memberTok, memberID := s.join(f, "forgetful@password.example", "member")
	link := s.do("POST", "/people/"+memberID+"/reset-link", f.ownerTok, nil)
	require.Equal(t, http.StatusCreated, link.Status, link.Raw)
	require.Equal(t, false, link.Body["emailed"])
	tok := tokenOf(t, link.str("link"))
	r = s.do("POST", "/auth/reset", "", map[string]string{"token": tok, "password": "Brand-New-Secret-9"})
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	require.Equal(t, http.StatusUnauthorized, s.do("GET", "/me", memberTok, nil).Status, "the reset ends earlier sessions")
	r = s.do("POST", "/auth/reset", "", map[string]string{"token": tok, "password": "Brand-New-Secret-10"})
	require.Equal(t, http.StatusNotFound, r.Status, "single use: %s", r.Raw)
	require.Equal(t, http.StatusOK, s.do("POST", "/auth/login", "", map[string]string{"email": "forgetful@password.example", "password": "Brand-New-Secret-9"}).Status)
	require.Equal(t, http.StatusAccepted, s.do("POST", "/auth/forgot", "", map[string]string{"email": "nobody@password.example"}).Status)

	// Profile: names checked, the personal room follows the display name.
	r = s.do("PATCH", "/me", f.ownerTok, map[string]string{"displayName": "  "})
	require.Equal(t, http.StatusBadRequest, r.Status, r.Raw)
	r = s.do("PATCH", "/me", f.ownerTok, map[string]string{"name": "Olivia Stone", "displayName": "Dr. Stone"})
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	me := s.do("GET", "/me", f.ownerTok, nil)
	require.Equal(t, "Olivia Stone", me.str("user", "fullName"))
	pub := s.do("GET", "/rooms", f.ownerTok, nil).Body["rooms"].([]any)[0].(map[string]any)
	require.Equal(t, "Dr. Stone", pub["displayName"])
}

// Rooms: Premium only; links checked, unique across rooms and their
// recent old links; an old link leads to the room; archiving with patients
// waiting is refused or moves them.
func TestRoomsAndTheirLinks(t *testing.T) {
	s := adminService(t, testdb.PostgresDSN(t), nil)
	f := s.found("Rooms Clinic")
	r := s.do("POST", "/rooms", f.ownerTok, map[string]string{"name": "Team", "slug": "rooms-team"})
	require.Equal(t, http.StatusForbidden, r.Status, r.Raw)
	require.Equal(t, "plan_required", r.str("error", "code"))
	require.Equal(t, http.StatusOK, s.do("PUT", "/clinic/plan", f.ownerTok, map[string]string{"plan": "premium"}).Status)

	for slug, code := range map[string]int{"api": 400, "Bad Slug!": 400, "-x-": 400, "ab": 400, "dr-lee": 409} {
		r = s.do("POST", "/rooms", f.ownerTok, map[string]string{"name": "Team", "slug": slug})
		require.Equal(t, code, r.Status, "%s: %s", slug, r.Raw)
	}
	team := s.do("POST", "/rooms", f.ownerTok, map[string]string{"name": "Team", "slug": "Rooms-Team"})
	require.Equal(t, http.StatusCreated, team.Status, team.Raw)
	require.Equal(t, "rooms-team", team.str("room", "slug"))
	teamID := team.str("room", "id")
	spare := s.do("POST", "/rooms", f.ownerTok, map[string]string{"name": "Spare"}).str("room", "id")

	r = s.do("PATCH", "/rooms/"+teamID, f.ownerTok, map[string]string{"slug": "rooms-team-2"})
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(s.url + "/c/rooms-team")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	require.Equal(t, "/c/rooms-team-2", resp.Header.Get("Location"))
	require.Equal(t, "rooms-team-2", s.do("GET", "/checkin/rooms-team", "", nil).str("slug"), "a printed old link still checks patients in")
	r = s.do("PATCH", "/rooms/"+spare, f.ownerTok, map[string]string{"slug": "rooms-team"})
	require.Equal(t, http.StatusConflict, r.Status, "another room cannot take a recent old link: %s", r.Raw)

	visit, _ := s.checkIn("rooms-team", "Pat Archive")
	r = s.do("POST", "/rooms/"+teamID+"/archive", f.ownerTok, nil)
	require.Equal(t, http.StatusConflict, r.Status, r.Raw)
	require.Equal(t, "patients_waiting", r.str("error", "code"))
	require.Contains(t, r.str("error", "message"), "1 patient is waiting")
	r = s.do("POST", "/rooms/"+teamID+"/archive", f.ownerTok, map[string]string{"moveToRoomId": spare})
	require.Equal(t, http.StatusForbidden, r.Status, "the sender must act for the room: %s", r.Raw)
	require.Equal(t, http.StatusNoContent, s.do("PUT", "/rooms/"+teamID+"/members/"+f.ownerID, f.ownerTok, nil).Status)
	require.Equal(t, http.StatusNoContent, s.do("PUT", "/rooms/"+spare+"/members/"+f.ownerID, f.ownerTok, nil).Status)
	r = s.do("POST", "/rooms/"+teamID+"/archive", f.ownerTok, map[string]string{"moveToRoomId": spare})
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	require.EqualValues(t, 1, r.Body["moved"])
	require.Equal(t, spare, s.env.Visit(visit).RoomID, "the patient is in exactly the room named")
	require.Equal(t, http.StatusNotFound, s.do("GET", "/checkin/rooms-team-2", "", nil).Status, "an archived room takes no check-ins")

	// Downgrading with shared rooms in use says what stops, until confirmed.
	r = s.do("PUT", "/clinic/plan", f.ownerTok, map[string]string{"plan": "pro"})
	require.Equal(t, http.StatusConflict, r.Status, r.Raw)
	require.Equal(t, "confirm_required", r.str("error", "code"))
	require.Contains(t, r.str("error", "message"), "1 shared room is hidden")
	r = s.do("PUT", "/clinic/plan", f.ownerTok, map[string]any{"plan": "pro", "confirm": true})
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	require.Equal(t, false, s.do("GET", "/me", f.ownerTok, nil).Body["features"].(map[string]any)["sharedRooms"])
}

// Sign-up is off unless enabled, and a taken name or email is refused.
func TestSignup(t *testing.T) {
	s := adminService(t, testdb.SQLiteDSN(t), nil)
	s.found("Signup Clinic")
	r := s.do("POST", "/signup", "", map[string]string{"clinicName": "Signup Clinic", "ownerName": "X", "email": "x@signup.example", "password": adminPassword})
	require.Equal(t, http.StatusConflict, r.Status, r.Raw)
	require.Contains(t, r.str("error", "message"), "clinicName")
	r = s.do("POST", "/signup", "", map[string]string{"clinicName": "Another", "ownerName": "X", "email": "signupclinic@owner.example", "password": adminPassword})
	require.Equal(t, http.StatusConflict, r.Status, r.Raw)
	require.Contains(t, r.str("error", "message"), "email")
	r = s.do("POST", "/signup", "", map[string]string{"clinicName": "Another", "ownerName": "X", "email": "not-an-email", "password": adminPassword})
	require.Equal(t, http.StatusBadRequest, r.Status, r.Raw)

	closed := startAPI(t, s.env, nil)
	require.Equal(t, false, closed.do("GET", "/signup", "", nil).Body["open"])
	r = closed.do("POST", "/signup", "", map[string]string{"clinicName": "Closed", "ownerName": "X", "email": "x@closed.example", "password": adminPassword})
	require.Equal(t, http.StatusForbidden, r.Status, r.Raw)
	require.Equal(t, "signup_closed", r.str("error", "code"))
}

// With a mail server configured, an invitation and a forgotten password
// arrive by mail (a real SMTP conversation over STARTTLS) to the right
// person, and the mailed links work.
func TestMailedLinks(t *testing.T) {
	srv := smtptest.Start(t, false)
	s := adminService(t, testdb.PostgresDSN(t), func(d *api.Deps) {
		d.PublicURL = "https://handoff.clinic.example"
		d.Mailer = mailer.SMTP{Host: "127.0.0.1", Port: srv.Addr.Port, User: srv.User, Password: srv.Password, From: "Handoff <no-reply@clinic.example>",
			RootCAs: srv.RootCAs, Timeout: 5 * time.Second}
	})
	f := s.found("Mail Clinic")
	inv := s.do("POST", "/invitations", f.ownerTok, map[string]string{"email": "ada@mail.example", "role": "member"})
	require.Equal(t, http.StatusCreated, inv.Status, inv.Raw)
	require.Equal(t, true, inv.Body["emailed"])
	mail := srv.Next(t, 10*time.Second)
	require.Equal(t, "ada@mail.example", mail.To)
	require.True(t, mail.TLS)
	require.Contains(t, mail.Data, "Subject: You are invited to Mail Clinic on Handoff")
	link := regexp.MustCompile(`https://handoff\.clinic\.example/#invite=hi_[A-Za-z0-9_-]{43}`).FindString(mail.Data)
	require.Equal(t, inv.str("link"), link, "the mailed link is the one shown to the inviter")
	acc := s.do("POST", "/invitations/by-token/"+tokenOf(t, link)+"/accept", "", map[string]string{"name": "Ada Mail", "password": adminPassword})
	require.Equal(t, http.StatusCreated, acc.Status, acc.Raw)

	require.Equal(t, http.StatusAccepted, s.do("POST", "/auth/forgot", "", map[string]string{"email": "ada@mail.example"}).Status)
	mail = srv.Next(t, 10*time.Second)
	require.Equal(t, "ada@mail.example", mail.To)
	reset := regexp.MustCompile(`https://handoff\.clinic\.example/#reset=hr_[A-Za-z0-9_-]{43}`).FindString(mail.Data)
	require.NotEmpty(t, reset, mail.Data)
	r := s.do("POST", "/auth/reset", "", map[string]string{"token": tokenOf(t, reset), "password": "Mailed-Reset-Pass-1"})
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	// Nobody is mailed for an address without an account.
	// (mail goes out before the answer, so it would be here already).
	require.Equal(t, http.StatusAccepted, s.do("POST", "/auth/forgot", "", map[string]string{"email": "stranger@mail.example"}).Status)
	require.Zero(t, srv.Pending())
}

// Administrative routes have their own per-address limit.
func TestAdministrationIsRateLimited(t *testing.T) {
	s := adminService(t, testdb.SQLiteDSN(t), func(d *api.Deps) { d.AdminRate = 1 })
	f := s.found("Limited Clinic")
	limited := 0
	for i := 0; i < 40; i++ {
		r := s.do("GET", "/people", f.ownerTok, nil)
		if r.Status == http.StatusTooManyRequests {
			limited++
			require.Equal(t, "1", r.header("Retry-After"))
		} else {
			require.Equal(t, http.StatusOK, r.Status, r.Raw)
		}
	}
	require.Greater(t, limited, 10, "a burst of 20, then about one a second")
}

// A person sees where they are signed in (address, browser), signs out one
// session or all the others; an admin signs a person out everywhere. Each
// is audited; nobody reaches another person's sessions.
func TestSessionsAPersonControls(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		s := adminService(t, dsn, nil)
		f := s.found("Sessions Clinic")
		memberTok, memberID := s.join(f, "roaming@sessions.example", "member")
		login := func() string {
			r := s.do("POST", "/auth/login", "", map[string]string{"email": "roaming@sessions.example", "password": adminPassword}, "User-Agent", "Laptop Browser 1.0")
			require.Equal(t, http.StatusOK, r.Status, r.Raw)
			return r.str("token")
		}
		laptop, phone := login(), login()
		list := s.do("GET", "/me/sessions", memberTok, nil)
		require.Equal(t, http.StatusOK, list.Status, list.Raw)
		sessions := list.Body["sessions"].([]any)
		require.Len(t, sessions, 3)
		current, laptopID := 0, ""
		for _, x := range sessions {
			x := x.(map[string]any)
			require.Equal(t, "127.0.0.1", x["address"])
			if x["current"] == true {
				current++
			}
			if x["userAgent"] == "Laptop Browser 1.0" && laptopID == "" {
				laptopID = x["id"].(string)
			}
		}
		require.Equal(t, 1, current)

		// Another person's session is nobody's business: 404, nothing ends.
		require.Equal(t, http.StatusNotFound, s.do("DELETE", "/me/sessions/"+laptopID, f.ownerTok, nil).Status)
		require.Equal(t, http.StatusNoContent, s.do("DELETE", "/me/sessions/"+laptopID, memberTok, nil).Status)
		alive := func(tok string) bool { return s.do("GET", "/me", tok, nil).Status == http.StatusOK }
		require.Equal(t, 1, count(alive(laptop), alive(phone)), "one of the two laptop-agent sessions ended")
		require.Equal(t, http.StatusNoContent, s.do("POST", "/me/sessions/sign-out-others", memberTok, nil).Status)
		require.False(t, alive(laptop) || alive(phone))
		require.True(t, alive(memberTok), "this one stays")

		// An admin signs the person out everywhere; a member may not.
		other := login()
		require.Equal(t, http.StatusForbidden, s.do("POST", "/people/"+f.ownerID+"/sign-out", memberTok, nil).Status)
		require.Equal(t, http.StatusNoContent, s.do("POST", "/people/"+memberID+"/sign-out", f.ownerTok, nil).Status)
		require.False(t, alive(memberTok) || alive(other))
		audit := s.do("GET", "/audit?action=auth.signed_out&actorId="+memberID, f.ownerTok, nil)
		require.Len(t, audit.Body["audit"], 3, audit.Raw)
	})
}

// count is how many of bs are true.
func count(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}
