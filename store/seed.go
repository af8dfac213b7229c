package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"
)

// DemoPassword is the password of every demo user.
const DemoPassword = "handoff-demo"

// DemoUser is a demo login, listed by `handoff dev`.
type DemoUser struct {
	Email, Name string
	Role        Role
	// PersonalSlug is the slug of the user's personal room; empty for none.
	PersonalSlug string
}

// DemoSharedRoom is a shared room with the emails of its members.
type DemoSharedRoom struct {
	Name, Slug string
	Members    []string
}

// DemoClinic is one clinic of the demo data.
type DemoClinic struct {
	Name        string
	Plan        Plan
	Users       []DemoUser
	SharedRooms []DemoSharedRoom
}

// Demo is the demo data the README lists: a Premium clinic with personal and
// shared rooms, a second Premium clinic, and a free-plan clinic.
var Demo = []DemoClinic{
	{
		Name: "Riverside Family Health", Plan: PlanPremium,
		Users: []DemoUser{
			{Email: "dr.lee@riverside.example", Name: "Dr. Maya Lee", Role: RoleMember, PersonalSlug: "dr-lee"},
			{Email: "dr.patel@riverside.example", Name: "Dr. Arjun Patel", Role: RoleMember, PersonalSlug: "dr-patel"},
			{Email: "frontdesk@riverside.example", Name: "Sam Ortiz", Role: RoleStaff},
			{Email: "admin@riverside.example", Name: "Jordan Kim", Role: RoleAdmin, PersonalSlug: "jordan-kim"},
		},
		SharedRooms: []DemoSharedRoom{
			{Name: "Reception", Slug: "riverside-reception", Members: []string{"frontdesk@riverside.example", "dr.lee@riverside.example"}},
			{Name: "Urgent Care", Slug: "riverside-urgent", Members: []string{"dr.patel@riverside.example"}},
		},
	},
	{
		Name: "Lakeview Pediatrics", Plan: PlanPremium,
		Users: []DemoUser{
			{Email: "dr.grant@lakeview.example", Name: "Dr. Ava Grant", Role: RoleMember, PersonalSlug: "dr-grant"},
		},
	},
	{
		Name: "Hillside Therapy", Plan: PlanFree,
		Users: []DemoUser{
			{Email: "dr.cho@hillside.example", Name: "Dr. Min Cho", Role: RoleMember, PersonalSlug: "dr-cho"},
			{Email: "dr.park@hillside.example", Name: "Dr. Leo Park", Role: RoleMember, PersonalSlug: "dr-park"},
		},
	},
}

// SeedDemo writes the demo data, creating only what is missing, so running
// it again changes nothing. It returns how many rows it created.
func (db *DB) SeedDemo(ctx context.Context) (created int, err error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(DemoPassword), bcrypt.DefaultCost)
	if err != nil {
		return 0, err
	}
	err = db.g.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		s := seeder{tx: tx, hash: string(hash)}
		for _, c := range Demo {
			if err := s.clinic(c); err != nil {
				return fmt.Errorf("seeding %s: %w", c.Name, err)
			}
		}
		created = s.created
		return nil
	})
	return created, err
}

type seeder struct {
	tx      *gorm.DB
	hash    string
	created int
}

// ensure loads the row matching where into dst, or creates dst as given.
// The lookup goes through a zero value: GORM would otherwise add dst's fresh
// primary key to the condition and never find the existing row.
func (s *seeder) ensure(dst any, where string, args ...any) error {
	found := reflect.New(reflect.TypeOf(dst).Elem())
	err := s.tx.Where(where, args...).Take(found.Interface()).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		s.created++
		return s.tx.Create(dst).Error
	case err != nil:
		return err
	}
	reflect.ValueOf(dst).Elem().Set(found.Elem())
	return nil
}

func (s *seeder) clinic(c DemoClinic) error {
	clinic := Clinic{ID: uuid.NewString(), Name: c.Name, Plan: c.Plan}
	if err := s.ensure(&clinic, "name = ?", c.Name); err != nil {
		return err
	}
	userIDs := map[string]string{}
	for _, u := range c.Users {
		user := User{ID: uuid.NewString(), ClinicID: clinic.ID, Email: u.Email, FullName: u.Name, DisplayName: u.Name, Role: u.Role, PasswordHash: s.hash}
		if err := s.ensure(&user, "email = ?", u.Email); err != nil {
			return err
		}
		userIDs[u.Email] = user.ID
		if u.PersonalSlug == "" {
			continue
		}
		room := Room{ID: uuid.NewString(), ClinicID: clinic.ID, Kind: RoomPersonal, Name: u.Name, Slug: u.PersonalSlug, OwnerID: &user.ID}
		if err := s.ensure(&room, "slug = ?", u.PersonalSlug); err != nil {
			return err
		}
	}
	for _, r := range c.SharedRooms {
		room := Room{ID: uuid.NewString(), ClinicID: clinic.ID, Kind: RoomShared, Name: r.Name, Slug: r.Slug}
		if err := s.ensure(&room, "slug = ?", r.Slug); err != nil {
			return err
		}
		for _, email := range r.Members {
			member := RoomMember{RoomID: room.ID, UserID: userIDs[email]}
			if err := s.ensure(&member, "room_id = ? AND user_id = ?", member.RoomID, member.UserID); err != nil {
				return err
			}
		}
	}
	return nil
}
