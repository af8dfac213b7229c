package store

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"

	"github.com/handoff-telehealth/handoff/clinic"
)

// ErrNotFound is what a query for one row answers when there is none.
var ErrNotFound = gorm.ErrRecordNotFound

// Queries are every read and write Handoff makes of its database, named and
// grouped by what they touch. The API, the activities, metrics and the
// command call these; nothing outside this package speaks GORM. Get them
// with DB.With for single statements, or DB.InTx for a transaction.
type Queries struct {
	Clinics     Clinics
	Users       Users
	Rooms       Rooms
	Visits      Visits
	Calls       Calls
	Apps        Apps
	Sessions    Sessions
	Presence    Presences
	Outbox      Outbox
	Audit       Audit
	Transfers   Transfers
	Invitations Invitations
	Resets      Resets
	MFA         MFA
	Messages    Messages
	Guests      Guests
	MediaNodes  MediaNodes
}

// conn is what every group of queries runs on: the pool or a transaction.
type conn struct {
	g  *gorm.DB
	db *DB
	tx *txState // nil outside a transaction
}

// txState is what a transaction learned while it ran.
type txState struct {
	wroteEvents bool
}

func (db *DB) queries(c conn) Queries {
	return Queries{Clinics{c}, Users{c}, Rooms{c}, Visits{c}, Calls{c}, Apps{c}, Sessions{c}, Presences{c}, Outbox{c}, Audit{c}, Transfers{c}, Invitations{c}, Resets{c}, MFA{c}, Messages{c}, Guests{c}, MediaNodes{c}}
}

// With gives the queries on the connection pool, each statement on its own.
func (db *DB) With(ctx context.Context) Queries {
	return db.queries(conn{g: db.g.WithContext(ctx), db: db})
}

// InTx runs fn in one transaction: everything it writes commits together or
// not at all. Once a transaction that wrote events commits, this process's
// live-event streams wake (other processes hear PostgreSQL's NOTIFY).
func (db *DB) InTx(ctx context.Context, fn func(q Queries) error) error {
	st := &txState{}
	if err := db.g.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return fn(db.queries(conn{g: tx, db: db, tx: st}))
	}); err != nil {
		return err
	}
	if st.wroteEvents {
		db.EventsCommitted()
	}
	return nil
}

// take loads the one row matching where into dst.
func take[T any](c conn, where string, args ...any) (T, error) {
	var row T
	err := c.g.Where(where, args...).Take(&row).Error
	return row, err
}

// Clinics are the tenants.
type Clinics struct{ c conn }

// Get is clinic id.
func (q Clinics) Get(id string) (Clinic, error) { return take[Clinic](q.c, "id = ?", id) }

// Users are the people who sign in to the dashboard.
type Users struct{ c conn }

// Get is user id, of any clinic.
func (q Users) Get(id string) (User, error) { return take[User](q.c, "id = ?", id) }

// InClinic is user id of clinic clinicID; another clinic's is not found.
func (q Users) InClinic(id, clinicID string) (User, error) {
	return take[User](q.c, "id = ? AND clinic_id = ?", id, clinicID)
}

// ByEmail is the user signing in with email (already lower-cased).
func (q Users) ByEmail(email string) (User, error) { return take[User](q.c, "email = ?", email) }

// OfClinic lists a clinic's users.
func (q Users) OfClinic(clinicID string) ([]User, error) {
	var out []User
	return out, q.c.g.Where("clinic_id = ?", clinicID).Find(&out).Error
}

// Rooms are where patients wait and are seen from.
type Rooms struct{ c conn }

// Get is room id, deleted or not.
func (q Rooms) Get(id string) (Room, error) { return take[Room](q.c, "id = ?", id) }

// LiveInClinic is room id of clinic clinicID, unless deleted.
func (q Rooms) LiveInClinic(id, clinicID string) (Room, error) {
	return take[Room](q.c, "id = ? AND clinic_id = ? AND deleted_at IS NULL", id, clinicID)
}

// BySlug is the live room whose check-in link ends in slug (see also
// ByOldSlug).
func (q Rooms) BySlug(slug string) (Room, error) {
	return take[Room](q.c, "slug = ? AND deleted_at IS NULL", slug)
}

// BySlugWithClinic is BySlug with the room's clinic, in one read (a
// check-in needs both, and each read is a round trip).
func (q Rooms) BySlugWithClinic(slug string) (Room, Clinic, error) {
	var row struct {
		Room   `gorm:"embedded"`
		Clinic Clinic `gorm:"embedded;embeddedPrefix:clinic__"`
	}
	cols, err := clinicColumns.get(func() (string, error) { return prefixedColumns(q.c.g, &Clinic{}, "clinics", "clinic__") })
	if err != nil {
		return Room{}, Clinic{}, err
	}
	err = q.c.g.Model(&Room{}).Select("rooms.*, "+cols).Joins("JOIN clinics ON clinics.id = rooms.clinic_id").
		Where("rooms.slug = ? AND rooms.deleted_at IS NULL", slug).Take(&row).Error
	return row.Room, row.Clinic, err
}

// clinicColumns is BySlugWithClinic's list of the clinic's columns.
var clinicColumns builtOnce[string]

// builtOnce holds what is built from a model once per process: the model
// does not change while the process runs.
type builtOnce[T any] struct {
	once  sync.Once
	value T
	err   error
}

func (b *builtOnce[T]) get(build func() (T, error)) (T, error) {
	b.once.Do(func() { b.value, b.err = build() })
	return b.value, b.err
}

// modelSchema is gorm's description of model's table.
func modelSchema(g *gorm.DB, model any) (*schema.Schema, error) {
	stmt := &gorm.Statement{DB: g}
	if err := stmt.Parse(model); err != nil {
		return nil, err
	}
	return stmt.Schema, nil
}

// prefixedColumns lists every column of model's table as "table.col AS
// <prefix>col", for a struct that embeds the model with that prefix: the
// list follows the model, so a column added to it is read too.
func prefixedColumns(g *gorm.DB, model any, table, prefix string) (string, error) {
	sch, err := modelSchema(g, model)
	if err != nil {
		return "", err
	}
	cols := make([]string, 0, len(sch.DBNames))
	for _, c := range sch.DBNames {
		cols = append(cols, table+"."+c+" AS "+prefix+c)
	}
	return strings.Join(cols, ", "), nil
}

// OfClinic lists a clinic's rooms, deleted ones too (old cards name them).
func (q Rooms) OfClinic(clinicID string) ([]Room, error) {
	var out []Room
	return out, q.c.g.Where("clinic_id = ?", clinicID).Find(&out).Error
}

// Members lists the ids of a shared room's members.
func (q Rooms) Members(roomID string) ([]string, error) {
	var ids []string
	return ids, q.c.g.Model(&RoomMember{}).Where("room_id = ?", roomID).Pluck("user_id", &ids).Error
}

// CanActFor tells whether u may act for r (clinic.MayActFor), reading r's
// member list when it is a shared room.
func (q Rooms) CanActFor(u User, r Room) (bool, error) {
	member := false
	if r.Kind == RoomShared {
		var n int64
		if err := q.c.g.Model(&RoomMember{}).Where("room_id = ? AND user_id = ?", r.ID, u.ID).Count(&n).Error; err != nil {
			return false, err
		}
		member = n > 0
	}
	return clinic.MayActFor(u.Actor(), r.Facts(), member), nil
}

// ForActor lists the ids of the rooms u may act for (clinic.MayActFor).
func (q Rooms) ForActor(u User) ([]string, error) {
	rooms, err := q.OfClinic(u.ClinicID)
	if err != nil {
		return nil, err
	}
	var memberOf []string
	if err := q.c.g.Model(&RoomMember{}).Where("user_id = ?", u.ID).Pluck("room_id", &memberOf).Error; err != nil {
		return nil, err
	}
	member := make(map[string]bool, len(memberOf))
	for _, id := range memberOf {
		member[id] = true
	}
	ids := []string{}
	for _, r := range rooms {
		if clinic.MayActFor(u.Actor(), r.Facts(), member[r.ID]) {
			ids = append(ids, r.ID)
		}
	}
	return ids, nil
}

// DisplayName is the <name> patients read for r (clinic.DisplayName), with
// its owner's name read from the database.
func (q Rooms) DisplayName(r Room) (string, error) {
	owner := ""
	if r.Kind == RoomPersonal && r.OwnerID != nil {
		u, err := take[User](q.c, "id = ?", *r.OwnerID)
		if err != nil {
			return "", err
		}
		owner = u.DisplayName
	}
	return clinic.DisplayName(r.Kind, r.Name, owner), nil
}

// Visits are the projection of the visit workflows.
type Visits struct{ c conn }

// Get is visit id.
func (q Visits) Get(id string) (Visit, error) { return take[Visit](q.c, "id = ?", id) }

// InClinic is visit id of clinic clinicID; another clinic's is not found.
func (q Visits) InClinic(id, clinicID string) (Visit, error) {
	return take[Visit](q.c, "id = ? AND clinic_id = ?", id, clinicID)
}

// ByTokenHash is the visit whose patient holds the token with this hash.
func (q Visits) ByTokenHash(hash string) (Visit, error) {
	return take[Visit](q.c, "token_hash = ?", hash)
}

// InRoom lists the visits of a room that have not ended, oldest check-in
// first: its waiting room and its calls.
func (q Visits) InRoom(roomID string) ([]Visit, error) {
	var out []Visit
	return out, q.c.g.Where("room_id = ? AND "+notEnded, roomID).Order("checked_in_at, id").Find(&out).Error
}

// InCall is a visit in call callID (the first by id), if any.
func (q Visits) InCall(callID string) (Visit, bool, error) {
	var out []Visit
	err := q.c.g.Where("call_id = ? AND state = ?", callID, VisitInCall).Order("id").Limit(1).Find(&out).Error
	if err != nil || len(out) == 0 {
		return Visit{}, false, err
	}
	return out[0], true, nil
}

// WaitingByRoom counts a clinic's waiting patients per room id.
func (q Visits) WaitingByRoom(clinicID string) (map[string]int, error) {
	return q.countWaiting("room_id", "clinic_id = ? AND state = ?", clinicID, VisitWaiting)
}

// WaitingByClinic counts waiting patients per clinic id.
func (q Visits) WaitingByClinic() (map[string]int, error) {
	return q.countWaiting("clinic_id", "state = ?", VisitWaiting)
}

func (q Visits) countWaiting(by, where string, args ...any) (map[string]int, error) {
	var rows []struct {
		GroupKey string
		N        int
	}
	if err := q.c.g.Model(&Visit{}).Select(by+" AS group_key, COUNT(*) AS n").Where(where, args...).Group(by).Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.GroupKey] = r.N
	}
	return out, nil
}

// Create writes a new visit's row; false when it exists already (an earlier
// attempt of the same check-in wrote it).
func (q Visits) Create(v Visit) (bool, error) {
	res := q.c.g.Clauses(clause.OnConflict{DoNothing: true}).Create(&v)
	return res.RowsAffected > 0, res.Error
}

// CreateInLiveRoom is Create in one statement with the check that the
// visit's room is live (not deleted) in the visit's clinic: false when the
// visit exists already, ErrNotFound when it does not and its room is gone.
// A check-in's transaction is a round trip shorter than with a read of the
// room first. Unlike Create it takes every column's value as given (a zero
// UpdatedAt is written as zero).
func (q Visits) CreateInLiveRoom(v Visit) (bool, error) {
	cols, err := visitColumns.get(func() ([]*schema.Field, error) { return creatableColumns(q.c.g, &Visit{}) })
	if err != nil {
		return false, err
	}
	args := make([]any, 0, len(cols)+2)
	row := reflect.ValueOf(&v).Elem()
	for _, f := range cols {
		value, _ := f.ValueOf(context.Background(), row)
		args = append(args, value)
	}
	res := q.c.g.Exec(`INSERT INTO visits (`+columnNames(cols)+`) SELECT `+strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")+
		` WHERE EXISTS (SELECT 1 FROM rooms WHERE id = ? AND clinic_id = ? AND deleted_at IS NULL) ON CONFLICT DO NOTHING`,
		append(args, v.RoomID, v.ClinicID)...)
	if res.Error != nil || res.RowsAffected > 0 {
		return res.Error == nil, res.Error
	}
	// Nothing written: the visit exists (an earlier attempt of the same
	// check-in), or its room is gone.
	var n int64
	if err := q.c.g.Model(&Visit{}).Where("id = ?", v.ID).Count(&n).Error; err != nil {
		return false, err
	}
	if n == 0 {
		return false, ErrNotFound
	}
	return false, nil
}

// visitColumns is CreateInLiveRoom's list of the visit's columns.
var visitColumns builtOnce[[]*schema.Field]

// creatableColumns lists the fields of model written when a row is created:
// the list follows the model, so a column added to it is written too.
func creatableColumns(g *gorm.DB, model any) ([]*schema.Field, error) {
	sch, err := modelSchema(g, model)
	if err != nil {
		return nil, err
	}
	var out []*schema.Field
	for _, f := range sch.Fields {
		if f.DBName != "" && f.Creatable {
			out = append(out, f)
		}
	}
	return out, nil
}

func columnNames(fields []*schema.Field) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.DBName
	}
	return strings.Join(names, ", ")
}

// Admitted puts a waiting visit into call callID.
func (q Visits) Admitted(id, callID string, at time.Time) error {
	return q.c.g.Model(&Visit{}).Where("id = ?", id).
		Updates(map[string]any{"state": VisitInCall, "call_id": callID, "updated_at": at}).Error
}

// Transferring marks a visit in state from as being transferred.
func (q Visits) Transferring(id string, from VisitState, at time.Time) error {
	return q.c.g.Model(&Visit{}).Where("id = ? AND state = ?", id, from).
		Updates(map[string]any{"state": VisitTransferring, "updated_at": at}).Error
}

// LeftCall forgets a visit's call once it is out of it. A visit still
// in_call keeps its call id until the step that moves it on clears both.
func (q Visits) LeftCall(id, callID string, at time.Time) error {
	return q.c.g.Model(&Visit{}).Where("id = ? AND call_id = ? AND state <> ?", id, callID, VisitInCall).
		Updates(map[string]any{"call_id": nil, "updated_at": at}).Error
}

// Move is a transfer's effect on the visit row.
type Move struct {
	VisitID, ActorID, FromRoomID, ToRoomID, Note string
	At                                           time.Time
}

// MovedTo puts a visit being transferred in the target waiting room, with
// who moved it from where, and counts the transfer.
func (q Visits) MovedTo(m Move) error {
	return q.c.g.Model(&Visit{}).Where("id = ? AND state = ?", m.VisitID, VisitTransferring).Updates(map[string]any{
		"room_id": m.ToRoomID, "state": VisitWaiting, "call_id": nil,
		"transferred_by_id": m.ActorID, "transferred_from_room_id": m.FromRoomID,
		"transfer_note": Sealed(m.Note), "transfers": gorm.Expr("transfers + 1"), "updated_at": m.At,
	}).Error
}

// BackToWaiting puts a visit being transferred back in its own waiting room.
func (q Visits) BackToWaiting(id string, at time.Time) error {
	return q.c.g.Model(&Visit{}).Where("id = ? AND state = ?", id, VisitTransferring).
		Updates(map[string]any{"state": VisitWaiting, "call_id": nil, "updated_at": at}).Error
}

// Ended ends a visit for reason.
func (q Visits) Ended(id, reason string, at time.Time) error {
	return q.c.g.Model(&Visit{}).Where("id = ? AND state <> ?", id, VisitEnded).Updates(map[string]any{
		"state": VisitEnded, "call_id": nil, "ended_at": at, "end_reason": reason, "updated_at": at,
	}).Error
}

// Arrival is what the API needs when a patient's first page opens: how many
// times the patient has closed their last open page (zero: the visit has
// never been told they left), and whether the visit reads the arrival from
// its row (migration 13) rather than hearing it by a signal.
func (q Visits) Arrival(id string) (departures int, recorded bool, err error) {
	var row struct {
		PatientDepartures int
		PatientArrival    int
	}
	err = q.c.g.Raw(`SELECT patient_departures, patient_arrival FROM visits WHERE id = ?`, id).Scan(&row).Error
	return row.PatientDepartures, row.PatientArrival > 0, err
}

// RecordArrival records that the patient's page has opened, for a visit that
// reads it from its row.
func (q Visits) RecordArrival(id string) error {
	return q.c.g.Exec(`UPDATE visits SET patient_arrival = 2 WHERE id = ? AND patient_arrival = 1`, id).Error
}

// Arrived says whether the patient's page has opened, for a visit that
// reads it from its row.
func (q Visits) Arrived(id string) (bool, error) {
	var n int
	err := q.c.g.Raw(`SELECT patient_arrival FROM visits WHERE id = ?`, id).Scan(&n).Error
	return n == 2, err
}

// CountDeparture records that the patient's last open page closed and
// returns the new count. The column is outside the Visit model so the
// workflow's writes of the visit never touch it.
func (q Visits) CountDeparture(id string) (int, error) {
	var n int
	err := q.c.g.Raw(`UPDATE visits SET patient_departures = patient_departures + 1 WHERE id = ? RETURNING patient_departures`, id).Scan(&n).Error
	return n, err
}

// Calls are video calls.
type Calls struct{ c conn }

// Get is call id.
func (q Calls) Get(id string) (Call, error) { return take[Call](q.c, "id = ?", id) }

// InClinic is call id of clinic clinicID.
func (q Calls) InClinic(id, clinicID string) (Call, error) {
	return take[Call](q.c, "id = ? AND clinic_id = ?", id, clinicID)
}

// Create writes a new call.
func (q Calls) Create(call Call) error { return q.c.g.Create(&call).Error }

// BecameGroup records that a second patient joined the call.
func (q Calls) BecameGroup(id string) error {
	return q.c.g.Model(&Call{}).Where("id = ?", id).Update("kind", CallGroup).Error
}

// Ended ends a call; false if it had ended already.
func (q Calls) Ended(id string, at time.Time) (bool, error) {
	res := q.c.g.Model(&Call{}).Where("id = ? AND ended_at IS NULL", id).Update("ended_at", at)
	return res.RowsAffected > 0, res.Error
}

// Apps are the apps open in calls, with their session data.
type Apps struct{ c conn }

// Open writes an app opened in a call.
func (q Apps) Open(app AppSession) error { return q.c.g.Create(&app).Error }

// OpenIn lists the apps open in a call.
func (q Apps) OpenIn(callID string) ([]AppSession, error) {
	var out []AppSession
	return out, q.c.g.Where("call_id = ? AND closed_at IS NULL", callID).Find(&out).Error
}

// Close closes the open apps ids of call callID and discards their data;
// it returns how many it closed.
func (q Apps) Close(callID string, ids []string, at time.Time) (int64, error) {
	res := q.c.g.Model(&AppSession{}).Where("id IN ? AND call_id = ? AND closed_at IS NULL", ids, callID).
		Updates(map[string]any{"closed_at": at, "data": nil})
	return res.RowsAffected, res.Error
}

// Sessions are providers' signed-in sessions.
type Sessions struct{ c conn }

// ByTokenHash is the session whose token has this hash.
func (q Sessions) ByTokenHash(hash string) (Session, error) {
	return take[Session](q.c, "token_hash = ?", hash)
}

// Create writes a new session.
func (q Sessions) Create(s Session) error { return q.c.g.Create(&s).Error }

// Touch records that the session was used at.
func (q Sessions) Touch(id string, at time.Time) error {
	return q.c.g.Model(&Session{}).Where("id = ?", id).Update("last_seen_at", at).Error
}

// Revoke signs the session out.
func (q Sessions) Revoke(id string, at time.Time) error {
	return q.c.g.Model(&Session{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", at).Error
}

// Presences are providers' open live-event streams.
type Presences struct{ c conn }

// Arrived records an open stream.
func (q Presences) Arrived(p Presence) error { return q.c.g.Create(&p).Error }

// StillHere refreshes a stream's heartbeat.
func (q Presences) StillHere(connectionID string, at time.Time) error {
	return q.c.g.Model(&Presence{}).Where("connection_id = ?", connectionID).Update("last_seen_at", at).Error
}

// Left forgets a closed stream.
func (q Presences) Left(connectionID string) error {
	return q.c.g.Delete(&Presence{}, "connection_id = ?", connectionID).Error
}

// OnlineIn lists the ids of a clinic's users with a stream seen after since.
func (q Presences) OnlineIn(clinicID string, since time.Time) ([]string, error) {
	var ids []string
	return ids, q.c.g.Model(&Presence{}).
		Where("last_seen_at > ? AND user_id IN (SELECT id FROM users WHERE clinic_id = ?)", since, clinicID).
		Distinct().Pluck("user_id", &ids).Error
}

// Outbox is the events table: stored first, then fanned out to streams.
type Outbox struct{ c conn }

// ToPatient appends an event for the patient of visitID.
func (q Outbox) ToPatient(clinicID, visitID, typ string, payload any, at time.Time) error {
	return q.append(Event{ClinicID: clinicID, Type: typ, Audience: AudiencePatient, VisitID: &visitID, CreatedAt: at}, payload)
}

// ToRoom appends an event about visitID for the providers of roomID.
func (q Outbox) ToRoom(clinicID, visitID, roomID, typ string, payload any, at time.Time) error {
	return q.append(Event{ClinicID: clinicID, Type: typ, Audience: AudienceRoom, VisitID: &visitID, RoomID: &roomID, CreatedAt: at}, payload)
}

// append writes e with its payload as JSON. Events are written only in a
// transaction (DB.InTx): the database orders its events' ids with the other
// writers' (migration 15), and its commit wakes the streams.
func (q Outbox) append(e Event, payload any) error {
	if q.c.tx == nil {
		return errors.New("store: events are written in a transaction (DB.InTx)")
	}
	q.c.tx.wroteEvents = true
	body, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	e.Payload = Sealed(body)
	return q.c.g.Create(&e).Error
}

// NewestID is the id of the newest event (0 when there is none).
func (q Outbox) NewestID() (int64, error) {
	var newest int64
	err := q.c.g.Model(&Event{}).Select("COALESCE(MAX(id), 0)").Scan(&newest).Error
	return newest, err
}

// FirstSince is the id of the first event written at or after since (the
// newest id + 1 when there is none).
func (q Outbox) FirstSince(since time.Time) (int64, error) {
	var ids []int64
	if err := q.c.g.Model(&Event{}).Where("created_at >= ?", since).Order("created_at, id").Limit(1).Pluck("id", &ids).Error; err != nil {
		return 0, err
	}
	if len(ids) == 1 {
		return ids[0], nil
	}
	newest, err := q.NewestID()
	return newest + 1, err
}

// ForPatient lists the patient events of a visit after id after, in order.
func (q Outbox) ForPatient(clinicID, visitID string, after int64, limit int) ([]Event, error) {
	return q.after(after, limit, "clinic_id = ? AND audience = ? AND visit_id = ?", clinicID, AudiencePatient, visitID)
}

// ForRooms lists the room events of rooms after id after, in order.
func (q Outbox) ForRooms(clinicID string, rooms []string, after int64, limit int) ([]Event, error) {
	return q.after(after, limit, "clinic_id = ? AND audience = ? AND room_id IN ?", clinicID, AudienceRoom, append(rooms, ""))
}

// After lists every event after id after, in order (the feed's read).
func (q Outbox) After(after int64, limit int) ([]Event, error) { return q.after(after, limit, "") }

// after lists the events after id after that match where ("": all).
func (q Outbox) after(after int64, limit int, where string, args ...any) ([]Event, error) {
	g := q.c.g.Where("id > ?", after)
	if where != "" {
		g = g.Where(where, args...)
	}
	var out []Event
	return out, g.Order("id").Limit(limit).Find(&out).Error
}

// Audit is the append-only audit trail.
type Audit struct{ c conn }

// Append adds a row.
func (q Audit) Append(row AuditEvent) error { return q.c.g.Create(&row).Error }

// Page lists a clinic's rows newest first, before id before (negative: from
// the newest), at most limit.
func (q Audit) Page(clinicID string, before int64, limit int, filter AuditFilter) ([]AuditEvent, error) {
	g := filter.apply(q.c.g.Where("clinic_id = ?", clinicID))
	if before >= 0 {
		g = g.Where("id < ?", before)
	}
	var out []AuditEvent
	return out, g.Order("id DESC").Limit(limit).Find(&out).Error
}

// TransfersSince lists the transfer rows (started, completed, failed) after
// since, oldest first; failedOnly keeps the failed ones.
func (q Audit) TransfersSince(since time.Time, failedOnly bool) ([]AuditEvent, error) {
	g := q.c.g.Where("at > ?", since)
	if failedOnly {
		g = g.Where("action = ?", clinic.AuditTransferFailed)
	} else {
		g = g.Where("action LIKE ?", "transfer.%")
	}
	var out []AuditEvent
	return out, g.Order("id").Find(&out).Error
}

// Transfers records which transfers have moved their patient.
type Transfers struct{ c conn }

// Completed tells whether transfer transferID of visitID moved the patient.
func (q Transfers) Completed(visitID, transferID string) (bool, error) {
	var n int64
	err := q.c.g.Model(&CompletedTransfer{}).Where("visit_id = ? AND transfer_id = ?", visitID, transferID).Count(&n).Error
	return n > 0, err
}

// Complete records that transfer transferID of visitID moved the patient.
func (q Transfers) Complete(visitID, transferID string, at time.Time) error {
	return q.c.g.Create(&CompletedTransfer{VisitID: visitID, TransferID: transferID, CompletedAt: at}).Error
}
