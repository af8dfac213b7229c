package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/handoff-telehealth/handoff/activities"
	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
	"github.com/handoff-telehealth/handoff/media"
	"github.com/handoff-telehealth/handoff/store"
)

// world is a seeded database with the demo's rooms and users by name.
type world struct {
	t     *testing.T
	db    *store.DB
	calls *media.SFU
	acts  *activities.Activities
	rooms map[string]store.Room // by slug
	users map[string]store.User // by email
}

func newWorld(t *testing.T, dsn string) *world {
	db := testdb.Open(t, dsn)
	_, err := db.SeedDemo(context.Background())
	require.NoError(t, err)
	sfu, err := media.NewSFU("test-media-secret")
	require.NoError(t, err)
	w := &world{t: t, db: db, calls: sfu}
	w.rooms, w.users = testdb.Index(t, db)
	w.acts = &activities.Activities{DB: db, Media: w.calls}
	return w
}

func (w *world) checkIn(slug, name string) string {
	room := w.rooms[slug]
	id := uuid.NewString()
	p := activities.CheckInParams{VisitID: id, ClinicID: room.ClinicID, RoomID: room.ID, PatientName: name,
		TokenHash: uuid.NewString(), CheckedInAt: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}
	require.NoError(w.t, w.acts.RecordCheckIn(context.Background(), p))
	require.NoError(w.t, w.acts.RecordCheckIn(context.Background(), p), "checking in twice is one check-in")
	return id
}

func (w *world) visit(id string) store.Visit {
	var v store.Visit
	require.NoError(w.t, w.db.Gorm().Take(&v, "id = ?", id).Error)
	return v
}

type event struct {
	Type, Audience string
	RoomID         *string
	Payload        map[string]any
}

func (w *world) events(visitID string) []event {
	var rows []store.Event
	require.NoError(w.t, w.db.Gorm().Where("visit_id = ?", visitID).Order("id").Find(&rows).Error)
	out := make([]event, len(rows))
	for i, r := range rows {
		out[i] = event{Type: r.Type, Audience: string(r.Audience), RoomID: r.RoomID}
		require.NoError(w.t, json.Unmarshal([]byte(r.Payload), &out[i].Payload))
	}
	return out
}

func (w *world) audit(visitID string) []string {
	var actions []string
	require.NoError(w.t, w.db.Gorm().Model(&store.AuditEvent{}).Where("visit_id = ?", visitID).Order("id").Pluck("action", &actions).Error)
	return actions
}

func (w *world) params(visitID, actorEmail, targetSlug string) activities.TransferParams {
	v := w.visit(visitID)
	p := activities.TransferParams{TransferID: uuid.NewString(), VisitID: visitID, ActorID: w.users[actorEmail].ID,
		SourceRoomID: v.RoomID, TargetRoomID: w.rooms[targetSlug].ID, Note: "check BP"}
	if v.CallID != nil {
		p.CallID = *v.CallID
	}
	return p
}

// transfer runs every step of a transfer twice, as retries would.
func (w *world) transfer(p activities.TransferParams) activities.TransferPlan {
	ctx := context.Background()
	plan, err := w.acts.BeginTransfer(ctx, p)
	require.NoError(w.t, err)
	again, err := w.acts.BeginTransfer(ctx, p)
	require.NoError(w.t, err)
	require.Equal(w.t, plan, again)
	if p.CallID != "" {
		for i := 0; i < 2; i++ {
			_, err = w.acts.CloseApps(ctx, p)
			require.NoError(w.t, err)
			_, err = w.acts.DetachMedia(ctx, p)
			require.NoError(w.t, err)
		}
	}
	require.NoError(w.t, w.acts.RetargetRoom(ctx, p, plan))
	require.NoError(w.t, w.acts.RetargetRoom(ctx, p, plan))

	// The whole sequence again after it finished: local activities run
	// again when their workflow task is lost with its worker.
	replayed, err := w.acts.BeginTransfer(ctx, p)
	require.NoError(w.t, err, "a finished transfer begun again is not refused")
	require.Equal(w.t, plan, replayed)
	if p.CallID != "" {
		_, err = w.acts.CloseApps(ctx, p)
		require.NoError(w.t, err)
	}
	require.NoError(w.t, w.acts.RetargetRoom(ctx, p, plan))
	return plan
}

func errType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

func messages(evs []event, typ, audience string) []string {
	var out []string
	for _, e := range evs {
		if e.Type == typ && e.Audience == audience {
			out = append(out, e.Payload["message"].(string))
		}
	}
	return out
}

func TestTransferFromTheWaitingRoom(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		w := newWorld(t, dsn)
		id := w.checkIn("dr-lee", "Pat Example")
		checkedIn := w.visit(id).CheckedInAt
		p := w.params(id, "dr.lee@riverside.example", "dr-patel")
		w.transfer(p)

		v := w.visit(id)
		require.Equal(t, w.rooms["dr-patel"].ID, v.RoomID)
		require.Equal(t, store.VisitWaiting, v.State)
		require.True(t, checkedIn.Equal(v.CheckedInAt), "the original check-in time is kept")
		require.Equal(t, w.users["dr.lee@riverside.example"].ID, *v.TransferredByID)
		require.Equal(t, w.rooms["dr-lee"].ID, *v.TransferredFromRoomID)
		require.Equal(t, "check BP", v.TransferNote.String())
		require.Equal(t, 1, v.Transfers, "retried steps count once")

		evs := w.events(id)
		require.Equal(t, []string{"Taking you to Dr. Arjun Patel's room now"}, messages(evs, "visit.transfer_started", "patient"))
		require.Equal(t, []string{"You have been transferred to Dr. Arjun Patel's room"}, messages(evs, "visit.transferred", "patient"))
		var sender, receiver *event
		for i, e := range evs {
			if e.Type == "visit.transferred" && e.Audience == "room" {
				switch *e.RoomID {
				case w.rooms["dr-lee"].ID:
					sender = &evs[i]
				case w.rooms["dr-patel"].ID:
					receiver = &evs[i]
				}
			}
		}
		require.NotNil(t, sender)
		require.Equal(t, "Transferred to Dr. Arjun Patel", sender.Payload["message"])
		require.NotNil(t, receiver)
		require.Equal(t, "Transferred by Dr. Maya Lee", receiver.Payload["message"])
		require.Equal(t, "Pat Example", receiver.Payload["patientName"])
		require.Equal(t, "check BP", receiver.Payload["note"])
		require.Equal(t, []string{"visit.checked_in", "transfer.started", "transfer.completed"}, w.audit(id))
	})
}

func TestTransferDuringCalls(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		w := newWorld(t, dsn)
		lee := w.users["dr.lee@riverside.example"]

		t.Run("1:1: apps close with their data, the call ends for the sender", func(t *testing.T) {
			id := w.checkIn("dr-lee", "Pat One")
			call, err := w.acts.Admit(ctx, activities.AdmitParams{VisitID: id, ActorID: lee.ID})
			require.NoError(t, err)
			require.Equal(t, store.CallOneToOne, call.Kind)
			members, live := w.calls.Members(call.CallID)
			require.True(t, live)
			require.ElementsMatch(t, []string{clinic.ProviderParticipant(lee.ID), clinic.PatientParticipant(id)}, members)
			notes := store.Sealed("private notes")
			app := store.AppSession{ID: uuid.NewString(), CallID: call.CallID, App: "notes", Data: &notes, OpenedByID: lee.ID, OpenedAt: time.Now().UTC()}
			require.NoError(t, w.db.Gorm().Create(&app).Error)

			w.transfer(w.params(id, lee.Email, "riverside-urgent"))
			var got store.AppSession
			require.NoError(t, w.db.Gorm().Take(&got, "id = ?", app.ID).Error)
			require.NotNil(t, got.ClosedAt)
			require.Nil(t, got.Data, "the app's session data is discarded")
			_, live = w.calls.Members(call.CallID)
			require.False(t, live, "a 1:1 call ends for the sender")
			var c store.Call
			require.NoError(t, w.db.Gorm().Take(&c, "id = ?", call.CallID).Error)
			require.NotNil(t, c.EndedAt)
			v := w.visit(id)
			require.Nil(t, v.CallID)
			require.Equal(t, w.rooms["riverside-urgent"].ID, v.RoomID)
			var closed int64
			w.db.Gorm().Model(&store.Event{}).Where("visit_id = ? AND type = ?", id, "app.closed").Count(&closed)
			require.EqualValues(t, 1, closed, "one app.closed event, even though CloseApps ran twice")
		})

		t.Run("group: only the patient leaves", func(t *testing.T) {
			one := w.checkIn("dr-lee", "Pat Two")
			two := w.checkIn("dr-lee", "Pat Three")
			call, err := w.acts.Admit(ctx, activities.AdmitParams{VisitID: one, ActorID: lee.ID})
			require.NoError(t, err)
			group, err := w.acts.Admit(ctx, activities.AdmitParams{VisitID: two, ActorID: lee.ID, CallID: call.CallID})
			require.NoError(t, err)
			require.Equal(t, store.CallGroup, group.Kind)

			w.transfer(w.params(one, lee.Email, "dr-patel"))
			members, live := w.calls.Members(call.CallID)
			require.True(t, live, "the group call goes on")
			require.ElementsMatch(t, []string{clinic.ProviderParticipant(lee.ID), clinic.PatientParticipant(two)}, members)
			require.Equal(t, store.VisitInCall, w.visit(two).State)
			require.Equal(t, store.VisitWaiting, w.visit(one).State)
		})
	})
}

func TestAllFourRoomKindPairs(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		w := newWorld(t, dsn)
		lee := "dr.lee@riverside.example" // owns dr-lee, member of Reception
		id := w.checkIn("dr-lee", "Pat Example")
		for _, hop := range []struct{ actor, to, patientName string }{
			{lee, "riverside-reception", "Reception"},                          // personal → shared
			{"frontdesk@riverside.example", "riverside-urgent", "Urgent Care"}, // shared → shared
			{"dr.patel@riverside.example", "dr-patel", "Dr. Arjun Patel"},      // shared → personal
			{"dr.patel@riverside.example", "dr-lee", "Dr. Maya Lee"},           // personal → personal
		} {
			plan := w.transfer(w.params(id, hop.actor, hop.to))
			require.Equal(t, "You have been transferred to "+hop.patientName+"'s room", plan.PatientMessageDone())
			require.Equal(t, w.rooms[hop.to].ID, w.visit(id).RoomID)
		}
		require.Equal(t, 4, w.visit(id).Transfers)
	})
}

func TestRulesRefuseAndChangeNothing(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		w := newWorld(t, dsn)
		riverside := w.checkIn("dr-lee", "Pat Example")
		hillside := w.checkIn("dr-cho", "Pat Free")
		cases := []struct {
			name string
			p    activities.TransferParams
			want string
		}{
			{"free plan", w.params(hillside, "dr.cho@hillside.example", "dr-park"), clinic.PlanRequired},
			{"other clinic's room", w.params(riverside, "dr.lee@riverside.example", "dr-grant"), clinic.NotFound},
			{"actor of another clinic", w.params(riverside, "dr.grant@lakeview.example", "dr-patel"), clinic.NotFound},
			{"no access to the patient's room", w.params(riverside, "dr.patel@riverside.example", "riverside-urgent"), clinic.Forbidden},
			{"staff without the room", w.params(riverside, "frontdesk@riverside.example", "dr-patel"), clinic.Forbidden},
			{"same room", w.params(riverside, "dr.lee@riverside.example", "dr-lee"), clinic.SameRoom},
		}
		before := w.events(riverside)
		for _, tc := range cases {
			_, err := w.acts.BeginTransfer(ctx, tc.p)
			require.Equal(t, tc.want, errType(err), "%s: %v", tc.name, err)
			// Temporal reads retryability off the returned error itself, not
			// off errors it wraps: a rejection must be one, or it is retried.
			appErr, ok := err.(*temporal.ApplicationError)
			require.True(t, ok, "%s: %T is not an ApplicationError", tc.name, err)
			require.True(t, appErr.NonRetryable(), tc.name)
		}
		_, err := w.acts.BeginTransfer(ctx, w.params(hillside, "dr.cho@hillside.example", "dr-park"))
		require.ErrorContains(t, err, "requires the Premium plan")
		require.Equal(t, store.VisitWaiting, w.visit(riverside).State)
		require.Equal(t, w.rooms["dr-lee"].ID, w.visit(riverside).RoomID)
		require.Equal(t, before, w.events(riverside), "no event for a refused transfer")
		require.Equal(t, []string{"visit.checked_in"}, w.audit(riverside))
	})
}

func TestTargetRoomDeletedMidTransferReturnsThePatient(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		w := newWorld(t, dsn)
		id := w.checkIn("dr-lee", "Pat Example")
		p := w.params(id, "dr.lee@riverside.example", "riverside-urgent")
		plan, err := w.acts.BeginTransfer(ctx, p)
		require.NoError(t, err)
		require.Equal(t, store.VisitTransferring, w.visit(id).State)
		require.NoError(t, w.db.Gorm().Model(&store.Room{}).Where("id = ?", p.TargetRoomID).Update("deleted_at", time.Now().UTC()).Error)

		err = w.acts.RetargetRoom(ctx, p, plan)
		require.Equal(t, clinic.TargetRoomGone, errType(err))
		require.NoError(t, w.acts.ReturnToSource(ctx, p, "the target room no longer exists"))
		require.NoError(t, w.acts.ReturnToSource(ctx, p, "the target room no longer exists"))

		v := w.visit(id)
		require.Equal(t, store.VisitWaiting, v.State)
		require.Equal(t, w.rooms["dr-lee"].ID, v.RoomID)
		evs := w.events(id)
		require.Equal(t, []string{"We could not transfer you. You are back in Dr. Maya Lee's waiting room"}, messages(evs, "visit.transfer_failed", "patient"))
		require.Len(t, messages(evs, "visit.transfer_failed", "room"), 1)
		require.Equal(t, []string{"visit.checked_in", "transfer.started", "transfer.failed"}, w.audit(id))
	})
}

func TestEndVisitLeavesTheCall(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		w := newWorld(t, dsn)
		lee := w.users["dr.lee@riverside.example"]
		id := w.checkIn("dr-lee", "Pat Example")
		call, err := w.acts.Admit(ctx, activities.AdmitParams{VisitID: id, ActorID: lee.ID})
		require.NoError(t, err)
		p := activities.EndParams{VisitID: id, ActorKind: "patient", ActorID: id, Reason: "left", CallID: call.CallID}
		require.NoError(t, w.acts.EndVisit(ctx, p))
		require.NoError(t, w.acts.EndVisit(ctx, p))
		v := w.visit(id)
		require.Equal(t, store.VisitEnded, v.State)
		require.Equal(t, "left", v.EndReason)
		_, live := w.calls.Members(call.CallID)
		require.False(t, live)
		require.Equal(t, []string{"visit.checked_in", "visit.admitted", "visit.left"}, w.audit(id))
	})
}

func TestAdmitAfterTheMediaNodeRestarted(t *testing.T) {
	w := newWorld(t, testdb.SQLiteDSN(t))
	ctx := context.Background()
	lee := w.users["dr.lee@riverside.example"]
	first := w.checkIn("dr-lee", "Pat One")
	call, err := w.acts.Admit(ctx, activities.AdmitParams{VisitID: first, ActorID: lee.ID})
	require.NoError(t, err)
	// The media node restarts: it knows no call any more.
	fresh, err := media.NewSFU("test-media-secret")
	require.NoError(t, err)
	w.acts.Media = fresh
	second := w.checkIn("dr-lee", "Pat Two")
	_, err = w.acts.Admit(ctx, activities.AdmitParams{VisitID: second, ActorID: lee.ID, CallID: call.CallID})
	require.NoError(t, err, "re-admitting into the ongoing call works")
	members, live := fresh.Members(call.CallID)
	require.True(t, live)
	require.ElementsMatch(t, []string{clinic.ProviderParticipant(lee.ID), clinic.PatientParticipant(second)}, members)
}

// A check-in is written only into a live room of its clinic: the room is
// checked in the visit's insert, and a refused check-in writes nothing. An
// attempt repeated after its visit was written is done, even if the room
// has gone since.
func TestACheckInIsWrittenOnlyIntoALiveRoomOfItsClinic(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		w := newWorld(t, dsn)
		lee := w.rooms["dr-lee"]
		var elsewhere store.Room
		for _, r := range w.rooms {
			if r.ClinicID != lee.ClinicID {
				elsewhere = r
				break
			}
		}
		require.NotEmpty(t, elsewhere.ID)
		attempt := func(id, roomID string) error {
			return w.acts.RecordCheckIn(ctx, activities.CheckInParams{VisitID: id, ClinicID: lee.ClinicID, RoomID: roomID,
				PatientName: "Pat Example", TokenHash: uuid.NewString(), CheckedInAt: time.Now().UTC(), ArrivalRecorded: true})
		}
		refused := func(roomID string) {
			t.Helper()
			id := uuid.NewString()
			require.Equal(t, string(clinic.NotFound), errType(attempt(id, roomID)))
			var n int64
			require.NoError(t, w.db.Gorm().Model(&store.Visit{}).Where("id = ?", id).Count(&n).Error)
			require.Zero(t, n, "no visit row")
			require.Empty(t, w.events(id))
			require.Empty(t, w.audit(id))
		}
		refused(elsewhere.ID) // another clinic's room

		id := uuid.NewString()
		require.NoError(t, attempt(id, lee.ID))
		require.Equal(t, store.VisitWaiting, w.visit(id).State)
		require.NoError(t, w.db.Gorm().Model(&store.Room{}).Where("id = ?", lee.ID).Update("deleted_at", time.Now().UTC()).Error)
		require.NoError(t, attempt(id, lee.ID), "the same check-in again, after its room went away")
		require.Equal(t, []string{"visit.checked_in"}, w.audit(id))
		refused(lee.ID) // a new check-in into the deleted room
	})
}
