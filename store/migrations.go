package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// migration is one versioned step of the schema. Statements are written once
// for both engines: {{serial}} and {{ts}} become each engine's own types.
// Engine-only statements (triggers) go in postgres / sqlite.
type migration struct {
	version  int
	name     string
	both     []string
	postgres []string
	sqlite   []string
}

var migrations = []migration{
	{
		version: 1,
		name:    "clinics, users, rooms, visits, calls, apps, audit, outbox",
		both: []string{
			`CREATE TABLE clinics (
				id VARCHAR(36) PRIMARY KEY,
				name VARCHAR(200) NOT NULL UNIQUE,
				plan VARCHAR(16) NOT NULL CHECK (plan IN ('free', 'pro', 'premium')),
				created_at {{ts}} NOT NULL
			)`,
			`CREATE TABLE users (
				id VARCHAR(36) PRIMARY KEY,
				clinic_id VARCHAR(36) NOT NULL REFERENCES clinics (id),
				email VARCHAR(320) NOT NULL UNIQUE,
				display_name VARCHAR(200) NOT NULL,
				role VARCHAR(16) NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'staff')),
				password_hash VARCHAR(200) NOT NULL,
				created_at {{ts}} NOT NULL,
				UNIQUE (id, clinic_id)
			)`,
			// A personal room has an owner, a shared room has members instead.
			// (id, clinic_id) is unique so that rows pointing at a room can also
			// prove, in the database, that the room is of their clinic.
			`CREATE TABLE rooms (
				id VARCHAR(36) PRIMARY KEY,
				clinic_id VARCHAR(36) NOT NULL REFERENCES clinics (id),
				kind VARCHAR(16) NOT NULL CHECK (kind IN ('personal', 'shared')),
				name VARCHAR(200) NOT NULL,
				slug VARCHAR(80) NOT NULL UNIQUE CHECK (slug <> ''),
				owner_id VARCHAR(36),
				created_at {{ts}} NOT NULL,
				deleted_at {{ts}},
				UNIQUE (id, clinic_id),
				FOREIGN KEY (owner_id, clinic_id) REFERENCES users (id, clinic_id),
				CHECK ((kind = 'personal' AND owner_id IS NOT NULL) OR (kind = 'shared' AND owner_id IS NULL))
			)`,
			`CREATE UNIQUE INDEX rooms_one_personal_room_per_owner ON rooms (owner_id) WHERE kind = 'personal'`,
			`CREATE TABLE room_members (
				room_id VARCHAR(36) NOT NULL REFERENCES rooms (id),
				user_id VARCHAR(36) NOT NULL REFERENCES users (id),
				PRIMARY KEY (room_id, user_id)
			)`,
			`CREATE TABLE calls (
				id VARCHAR(36) PRIMARY KEY,
				clinic_id VARCHAR(36) NOT NULL,
				room_id VARCHAR(36) NOT NULL,
				kind VARCHAR(16) NOT NULL CHECK (kind IN ('one_to_one', 'group')),
				media_node VARCHAR(200) NOT NULL DEFAULT '',
				started_at {{ts}} NOT NULL,
				ended_at {{ts}},
				FOREIGN KEY (room_id, clinic_id) REFERENCES rooms (id, clinic_id)
			)`,
			// One row per visit with a single room_id: a visit is in exactly one
			// room at any time, and that room is of the visit's clinic.
			`CREATE TABLE visits (
				id VARCHAR(36) PRIMARY KEY,
				clinic_id VARCHAR(36) NOT NULL,
				room_id VARCHAR(36) NOT NULL,
				state VARCHAR(16) NOT NULL CHECK (state IN ('waiting', 'in_call', 'transferring', 'ended')),
				patient_name VARCHAR(200) NOT NULL CHECK (patient_name <> ''),
				token_hash VARCHAR(64) NOT NULL UNIQUE,
				checked_in_at {{ts}} NOT NULL,
				call_id VARCHAR(36) REFERENCES calls (id),
				transferred_by_id VARCHAR(36) REFERENCES users (id),
				transferred_from_room_id VARCHAR(36) REFERENCES rooms (id),
				transfer_note VARCHAR(500) NOT NULL DEFAULT '',
				transfers INTEGER NOT NULL DEFAULT 0 CHECK (transfers >= 0),
				ended_at {{ts}},
				end_reason VARCHAR(32) NOT NULL DEFAULT '',
				updated_at {{ts}} NOT NULL,
				FOREIGN KEY (room_id, clinic_id) REFERENCES rooms (id, clinic_id),
				CHECK (state <> 'in_call' OR call_id IS NOT NULL),
				CHECK ((state = 'ended') = (ended_at IS NOT NULL))
			)`,
			`CREATE INDEX visits_waiting_by_room ON visits (room_id, checked_in_at) WHERE state <> 'ended'`,
			`CREATE TABLE app_sessions (
				id VARCHAR(36) PRIMARY KEY,
				call_id VARCHAR(36) NOT NULL REFERENCES calls (id),
				app VARCHAR(40) NOT NULL,
				data TEXT,
				opened_by_id VARCHAR(36) NOT NULL REFERENCES users (id),
				opened_at {{ts}} NOT NULL,
				closed_at {{ts}},
				CHECK (closed_at IS NULL OR data IS NULL)
			)`,
			`CREATE INDEX app_sessions_open_by_call ON app_sessions (call_id) WHERE closed_at IS NULL`,
			`CREATE TABLE audit_events (
				id {{serial}},
				clinic_id VARCHAR(36) NOT NULL REFERENCES clinics (id),
				at {{ts}} NOT NULL,
				actor_kind VARCHAR(16) NOT NULL CHECK (actor_kind IN ('user', 'patient', 'system')),
				actor_id VARCHAR(64) NOT NULL,
				action VARCHAR(64) NOT NULL,
				visit_id VARCHAR(36),
				room_id VARCHAR(36),
				target_room_id VARCHAR(36),
				detail TEXT NOT NULL DEFAULT ''
			)`,
			`CREATE INDEX audit_events_by_clinic ON audit_events (clinic_id, id)`,
			`CREATE TABLE events (
				id {{serial}},
				clinic_id VARCHAR(36) NOT NULL REFERENCES clinics (id),
				type VARCHAR(64) NOT NULL,
				audience VARCHAR(16) NOT NULL CHECK (audience IN ('patient', 'room')),
				visit_id VARCHAR(36),
				room_id VARCHAR(36),
				payload TEXT NOT NULL,
				created_at {{ts}} NOT NULL,
				CHECK (audience <> 'patient' OR visit_id IS NOT NULL),
				CHECK (audience <> 'room' OR room_id IS NOT NULL)
			)`,
			`CREATE INDEX events_by_clinic ON events (clinic_id, id)`,
		},
		postgres: []string{
			`CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP;
			END
			$$`,
			`CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
				FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()`,
			`CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
				FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()`,
		},
		sqlite: []string{
			`CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
				BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused'); END`,
			`CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
				BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused'); END`,
		},
	},
	{
		version: 2,
		name:    "provider sessions and presence",
		both: []string{
			`CREATE TABLE sessions (
				id VARCHAR(36) PRIMARY KEY,
				token_hash VARCHAR(64) NOT NULL UNIQUE,
				user_id VARCHAR(36) NOT NULL REFERENCES users (id),
				created_at {{ts}} NOT NULL,
				expires_at {{ts}} NOT NULL,
				last_seen_at {{ts}} NOT NULL,
				revoked_at {{ts}}
			)`,
			// One row per open live-event stream of a provider, refreshed by its
			// heartbeat: a room's providers are online while a fresh row exists.
			`CREATE TABLE presence (
				connection_id VARCHAR(36) PRIMARY KEY,
				user_id VARCHAR(36) NOT NULL REFERENCES users (id),
				last_seen_at {{ts}} NOT NULL
			)`,
			`CREATE INDEX presence_by_user ON presence (user_id, last_seen_at)`,
		},
	},
	{
		version: 3,
		name:    "audit rows by visit",
		// A transfer step run again looks up its own audit row; without this
		// it would scan the clinic's whole trail.
		both: []string{`CREATE INDEX audit_events_by_visit ON audit_events (visit_id, action)`},
	},
	{
		version: 4,
		name:    "patient departures per visit",
		// Counted by the API when a patient's last stream closes; the count
		// orders presence signals and spares the signal on a first arrival.
		both: []string{`ALTER TABLE visits ADD COLUMN patient_departures INTEGER NOT NULL DEFAULT 0`},
	},
	{
		version: 5,
		name:    "completed transfers",
		// Whether a transfer already moved its patient was read from the
		// audit row's text; it is a row of its own now, filled from those
		// rows ("transfer <id>") for transfers done before.
		both: []string{
			`CREATE TABLE completed_transfers (
				visit_id VARCHAR(36) NOT NULL REFERENCES visits (id),
				transfer_id VARCHAR(255) NOT NULL,
				completed_at {{ts}} NOT NULL,
				PRIMARY KEY (visit_id, transfer_id)
			)`,
			`INSERT INTO completed_transfers (visit_id, transfer_id, completed_at)
				SELECT visit_id, SUBSTR(detail, 10), MIN(at) FROM audit_events
				WHERE action = 'transfer.completed' AND visit_id IS NOT NULL AND detail LIKE 'transfer %'
				GROUP BY visit_id, SUBSTR(detail, 10)`,
		},
	},
	{
		version: 6,
		name:    "clinic administration",
		both: []string{
			// A person's full name (the dashboard, the audit) apart from the
			// display name patients read; deactivated people keep their rows.
			`ALTER TABLE users ADD COLUMN full_name VARCHAR(200) NOT NULL DEFAULT ''`,
			`UPDATE users SET full_name = display_name`,
			`ALTER TABLE users ADD COLUMN deactivated_at {{ts}}`,
			// A personal room closes when its provider is deactivated.
			`ALTER TABLE rooms ADD COLUMN closed_at {{ts}}`,
			`CREATE TABLE invitations (
				id VARCHAR(36) PRIMARY KEY,
				clinic_id VARCHAR(36) NOT NULL REFERENCES clinics (id),
				email VARCHAR(320) NOT NULL,
				role VARCHAR(16) NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'staff')),
				token_hash VARCHAR(64) NOT NULL UNIQUE,
				invited_by_id VARCHAR(36) NOT NULL REFERENCES users (id),
				created_at {{ts}} NOT NULL,
				expires_at {{ts}} NOT NULL,
				accepted_at {{ts}},
				revoked_at {{ts}},
				user_id VARCHAR(36) REFERENCES users (id),
				CHECK (accepted_at IS NULL OR revoked_at IS NULL)
			)`,
			`CREATE INDEX invitations_by_clinic ON invitations (clinic_id, created_at)`,
			`CREATE TABLE password_resets (
				id VARCHAR(36) PRIMARY KEY,
				user_id VARCHAR(36) NOT NULL REFERENCES users (id),
				token_hash VARCHAR(64) NOT NULL UNIQUE,
				created_at {{ts}} NOT NULL,
				expires_at {{ts}} NOT NULL,
				used_at {{ts}}
			)`,
			// A room's earlier links keep leading to it for a while.
			`CREATE TABLE old_slugs (
				slug VARCHAR(80) PRIMARY KEY,
				room_id VARCHAR(36) NOT NULL REFERENCES rooms (id),
				retired_at {{ts}} NOT NULL
			)`,
			`ALTER TABLE audit_events ADD COLUMN address VARCHAR(64) NOT NULL DEFAULT ''`,
			`ALTER TABLE audit_events ADD COLUMN target_user_id VARCHAR(36)`,
			`CREATE INDEX audit_events_by_actor ON audit_events (clinic_id, actor_id, id)`,
		},
	},
	{
		version: 7,
		name:    "sign-in back-off, events by time, sessions' origin, call participants",
		// Wrong passwords in a row since the last sign-in, and until when
		// the account's sign-in waits (clinic.SignInBackoff). Events by
		// time: a stream resumes no further back than a recent window.
		both: []string{
			`ALTER TABLE users ADD COLUMN failed_sign_ins INTEGER NOT NULL DEFAULT 0`,
			`ALTER TABLE users ADD COLUMN sign_in_wait_until {{ts}}`,
			`CREATE INDEX events_by_time ON events (created_at)`,
			// Where a session was opened from, for the person's list of
			// their sessions.
			`ALTER TABLE sessions ADD COLUMN address VARCHAR(64) NOT NULL DEFAULT ''`,
			`ALTER TABLE sessions ADD COLUMN user_agent VARCHAR(200) NOT NULL DEFAULT ''`,
			`CREATE INDEX sessions_by_user ON sessions (user_id, revoked_at)`,
			// The providers in a call: who admitted a patient into it or
			// joined it. Only they rejoin it after a lost media session.
			// Calls live at the upgrade get their admitters from the audit.
			`CREATE TABLE call_participants (
				call_id VARCHAR(36) NOT NULL REFERENCES calls (id),
				user_id VARCHAR(36) NOT NULL REFERENCES users (id),
				joined_at {{ts}} NOT NULL,
				PRIMARY KEY (call_id, user_id)
			)`,
			`INSERT INTO call_participants (call_id, user_id, joined_at)
				SELECT SUBSTR(detail, 6), actor_id, MIN(at) FROM audit_events
				WHERE action = 'visit.admitted' AND actor_kind = 'user' AND detail LIKE 'call %'
					AND SUBSTR(detail, 6) IN (SELECT id FROM calls) AND actor_id IN (SELECT id FROM users)
				GROUP BY SUBSTR(detail, 6), actor_id`,
		},
	},
	{
		version: 8,
		name:    "patient data sealed, two-factor sign-in, retention",
		both: []string{
			// Two-factor sign-in (TOTP): the secret (sealed), one being
			// enrolled, when it was turned on, and the last time step used,
			// so a code is good once. Recovery codes are kept as hashes.
			`ALTER TABLE users ADD COLUMN totp_secret TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE users ADD COLUMN totp_pending_secret TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE users ADD COLUMN totp_enabled_at {{ts}}`,
			`ALTER TABLE users ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0`,
			`ALTER TABLE clinics ADD COLUMN require_mfa BOOLEAN NOT NULL DEFAULT FALSE`,
			`CREATE TABLE recovery_codes (
				user_id VARCHAR(36) NOT NULL REFERENCES users (id),
				code_hash VARCHAR(64) NOT NULL,
				used_at {{ts}},
				PRIMARY KEY (user_id, code_hash)
			)`,
			// A password that was right, waiting for its second factor.
			`CREATE TABLE mfa_challenges (
				id VARCHAR(36) PRIMARY KEY,
				user_id VARCHAR(36) NOT NULL REFERENCES users (id),
				token_hash VARCHAR(64) NOT NULL UNIQUE,
				expires_at {{ts}} NOT NULL,
				attempts INTEGER NOT NULL DEFAULT 0,
				used_at {{ts}}
			)`,
			// Retention: when an ended visit's patient data was purged.
			`ALTER TABLE visits ADD COLUMN purged_at {{ts}}`,
			`CREATE INDEX visits_by_end ON visits (ended_at) WHERE ended_at IS NOT NULL AND purged_at IS NULL`,
		},
		// Sealed values are longer than the plain text they hold. The audit
		// trail stays append-only, but for one change: a purge may blank a
		// row's detail and address, keeping everything else.
		postgres: []string{
			`ALTER TABLE visits ALTER COLUMN patient_name TYPE TEXT, ALTER COLUMN transfer_note TYPE TEXT`,
			`CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				IF TG_OP = 'UPDATE' THEN
				IF NEW.detail = '' AND NEW.address = '' AND
					(NEW.id, NEW.clinic_id, NEW.at, NEW.actor_kind, NEW.actor_id, NEW.action, NEW.visit_id,
					 NEW.room_id, NEW.target_room_id, NEW.target_user_id) IS NOT DISTINCT FROM
					(OLD.id, OLD.clinic_id, OLD.at, OLD.actor_kind, OLD.actor_id, OLD.action, OLD.visit_id,
					 OLD.room_id, OLD.target_room_id, OLD.target_user_id) THEN
					RETURN NEW;
				END IF;
				END IF;
				RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP;
			END $$`,
		},
		sqlite: []string{
			`DROP TRIGGER audit_events_no_update`,
			`CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
				WHEN NOT (NEW.detail = '' AND NEW.address = '' AND NEW.id IS OLD.id AND NEW.clinic_id IS OLD.clinic_id
					AND NEW.at IS OLD.at AND NEW.actor_kind IS OLD.actor_kind AND NEW.actor_id IS OLD.actor_id
					AND NEW.action IS OLD.action AND NEW.visit_id IS OLD.visit_id AND NEW.room_id IS OLD.room_id
					AND NEW.target_room_id IS OLD.target_room_id AND NEW.target_user_id IS OLD.target_user_id)
				BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused'); END`,
		},
	},
	{
		version: 9,
		name:    "clinic's long-wait threshold",
		both: []string{
			// Cards of patients waiting longer than this change colour.
			`ALTER TABLE clinics ADD COLUMN wait_alert_minutes INTEGER NOT NULL DEFAULT 15`,
		},
	},
	{
		version: 10,
		name:    "messages",
		both: []string{
			// A visit's conversation (the waiting room's and its calls'),
			// sealed; it travels with the visit on a transfer.
			`CREATE TABLE messages (
				id {{serial}},
				clinic_id VARCHAR(36) NOT NULL REFERENCES clinics (id),
				visit_id VARCHAR(36) NOT NULL,
				sender_kind VARCHAR(16) NOT NULL CHECK (sender_kind IN ('patient', 'user')),
				sender_id VARCHAR(36) NOT NULL,
				sender_name TEXT NOT NULL,
				body TEXT NOT NULL,
				created_at {{ts}} NOT NULL
			)`,
			`CREATE INDEX messages_by_visit ON messages (visit_id, id)`,
			`ALTER TABLE clinics ADD COLUMN patient_chat BOOLEAN NOT NULL DEFAULT TRUE`,
		},
	},
	{
		version: 11,
		name:    "guests, and the chat of calls",
		both: []string{
			// A guest of a visit (an interpreter, a family member, another
			// clinician) comes in by a single-use link (link_hash), then
			// holds a token of its own (token_hash). name is sealed.
			`CREATE TABLE guests (
				id VARCHAR(36) PRIMARY KEY,
				clinic_id VARCHAR(36) NOT NULL REFERENCES clinics (id),
				visit_id VARCHAR(36) NOT NULL REFERENCES visits (id),
				call_id VARCHAR(36) REFERENCES calls (id),
				invited_by_id VARCHAR(36) NOT NULL REFERENCES users (id),
				link_hash VARCHAR(64) NOT NULL UNIQUE,
				token_hash VARCHAR(64) UNIQUE,
				name TEXT NOT NULL DEFAULT '',
				state VARCHAR(16) NOT NULL CHECK (state IN ('invited', 'waiting', 'in_call', 'gone')),
				gone_reason VARCHAR(16) NOT NULL DEFAULT '',
				created_at {{ts}} NOT NULL,
				expires_at {{ts}} NOT NULL,
				arrived_at {{ts}},
				admitted_at {{ts}},
				gone_at {{ts}},
				CHECK (state <> 'in_call' OR call_id IS NOT NULL),
				CHECK ((state = 'gone') = (gone_at IS NOT NULL))
			)`,
			`CREATE INDEX guests_by_visit ON guests (visit_id)`,
			`CREATE INDEX guests_by_call ON guests (call_id)`,
		},
		postgres: []string{
			// Messages said in a call are the call's chat: one copy per
			// patient of the call (send_id ties the copies), so each visit's
			// conversation stays whole and goes, or is purged, with it.
			`ALTER TABLE messages ADD COLUMN call_id VARCHAR(36)`,
			`ALTER TABLE messages ADD COLUMN send_id VARCHAR(36) NOT NULL DEFAULT ''`,
			`ALTER TABLE messages DROP CONSTRAINT messages_sender_kind_check`,
			`ALTER TABLE messages ADD CONSTRAINT messages_sender_kind_check CHECK (sender_kind IN ('patient', 'user', 'guest'))`,
			`CREATE INDEX messages_by_call ON messages (call_id, id) WHERE call_id IS NOT NULL`,
			`ALTER TABLE audit_events DROP CONSTRAINT audit_events_actor_kind_check`,
			`ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_kind_check CHECK (actor_kind IN ('user', 'patient', 'system', 'guest'))`,
		},
		// SQLite changes a CHECK only by building the table again; the
		// append-only triggers go with the old table and come back.
		sqlite: []string{
			`CREATE TABLE messages_v11 (
				id INTEGER PRIMARY KEY AUTOINCREMENT,
				clinic_id VARCHAR(36) NOT NULL REFERENCES clinics (id),
				visit_id VARCHAR(36) NOT NULL,
				sender_kind VARCHAR(16) NOT NULL CHECK (sender_kind IN ('patient', 'user', 'guest')),
				sender_id VARCHAR(36) NOT NULL,
				sender_name TEXT NOT NULL,
				body TEXT NOT NULL,
				created_at TIMESTAMP NOT NULL,
				call_id VARCHAR(36),
				send_id VARCHAR(36) NOT NULL DEFAULT ''
			)`,
			`INSERT INTO messages_v11 (id, clinic_id, visit_id, sender_kind, sender_id, sender_name, body, created_at)
				SELECT id, clinic_id, visit_id, sender_kind, sender_id, sender_name, body, created_at FROM messages`,
			// Ids are never reused: the new table's counter starts where the old one's stood.
			`DELETE FROM sqlite_sequence WHERE name = 'messages_v11'`,
			`INSERT INTO sqlite_sequence (name, seq) SELECT 'messages_v11', seq FROM sqlite_sequence WHERE name = 'messages'`,
			`DROP TABLE messages`,
			`ALTER TABLE messages_v11 RENAME TO messages`,
			`CREATE INDEX messages_by_visit ON messages (visit_id, id)`,
			`CREATE INDEX messages_by_call ON messages (call_id, id) WHERE call_id IS NOT NULL`,
			`CREATE TABLE audit_events_v11 (
				id INTEGER PRIMARY KEY AUTOINCREMENT,
				clinic_id VARCHAR(36) NOT NULL REFERENCES clinics (id),
				at TIMESTAMP NOT NULL,
				actor_kind VARCHAR(16) NOT NULL CHECK (actor_kind IN ('user', 'patient', 'system', 'guest')),
				actor_id VARCHAR(64) NOT NULL,
				action VARCHAR(64) NOT NULL,
				visit_id VARCHAR(36),
				room_id VARCHAR(36),
				target_room_id VARCHAR(36),
				detail TEXT NOT NULL DEFAULT '',
				address VARCHAR(64) NOT NULL DEFAULT '',
				target_user_id VARCHAR(36)
			)`,
			`INSERT INTO audit_events_v11 (id, clinic_id, at, actor_kind, actor_id, action, visit_id, room_id, target_room_id, detail, address, target_user_id)
				SELECT id, clinic_id, at, actor_kind, actor_id, action, visit_id, room_id, target_room_id, detail, address, target_user_id FROM audit_events`,
			// Ids are never reused: the new table's counter starts where the old one's stood.
			`DELETE FROM sqlite_sequence WHERE name = 'audit_events_v11'`,
			`INSERT INTO sqlite_sequence (name, seq) SELECT 'audit_events_v11', seq FROM sqlite_sequence WHERE name = 'audit_events'`,
			`DROP TABLE audit_events`,
			`ALTER TABLE audit_events_v11 RENAME TO audit_events`,
			`CREATE INDEX audit_events_by_clinic ON audit_events (clinic_id, id)`,
			`CREATE INDEX audit_events_by_visit ON audit_events (visit_id, action)`,
			`CREATE INDEX audit_events_by_actor ON audit_events (clinic_id, actor_id, id)`,
			`CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
				WHEN NOT (NEW.detail = '' AND NEW.address = '' AND NEW.id IS OLD.id AND NEW.clinic_id IS OLD.clinic_id
					AND NEW.at IS OLD.at AND NEW.actor_kind IS OLD.actor_kind AND NEW.actor_id IS OLD.actor_id
					AND NEW.action IS OLD.action AND NEW.visit_id IS OLD.visit_id AND NEW.room_id IS OLD.room_id
					AND NEW.target_room_id IS OLD.target_room_id AND NEW.target_user_id IS OLD.target_user_id)
				BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused'); END`,
			`CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
				BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused'); END`,
		},
	},
	{
		version: 12,
		name:    "media node registry",
		both: []string{
			// Each media node writes its own row every few seconds: where it is
			// reached, what it takes, what it has, whether it is draining. A
			// row whose heartbeat is old is a node that is gone.
			`CREATE TABLE media_nodes (
				id VARCHAR(64) PRIMARY KEY,
				public_url VARCHAR(500) NOT NULL,
				control_url VARCHAR(500) NOT NULL,
				capacity INTEGER NOT NULL CHECK (capacity > 0),
				participants INTEGER NOT NULL DEFAULT 0 CHECK (participants >= 0),
				draining BOOLEAN NOT NULL DEFAULT FALSE,
				started_at {{ts}} NOT NULL,
				heartbeat_at {{ts}} NOT NULL
			)`,
			`CREATE INDEX calls_open_by_clinic_node ON calls (clinic_id, media_node) WHERE ended_at IS NULL`,
		},
	},
	{
		version: 13,
		name:    "patient arrival recorded per visit",
		// 0: the visit hears of its patient's first page by a signal (visits
		// from before); 1: the API records it here instead and the visit
		// reads it when it would abandon the patient; 2: recorded.
		both: []string{`ALTER TABLE visits ADD COLUMN patient_arrival SMALLINT NOT NULL DEFAULT 0`},
	},
	{
		version: 14,
		name:    "a patient's place in line counted from an index alone",
		// With the state in the index, counting the patients waiting
		// ahead (every check-in, every page's view of its visit) reads
		// index entries only, not each visit's row (BENCHMARKS.md).
		both: []string{`CREATE INDEX visits_in_line ON visits (room_id, state, checked_in_at, id) WHERE state <> 'ended'`},
	},
	{
		version: 15,
		name:    "events numbered in commit order by the database",
		// Event ids must commit in the order they are handed out, so that
		// a reader that has seen id N never later finds a smaller id
		// appear (Feed). An event-writing transaction takes a lock before
		// its first event's id and holds it to its commit; the lock and
		// the NOTIFY that wakes other processes' streams used to be a
		// statement of their own, a round trip in every step that wrote
		// events. The trigger takes both inside the insert, and hands out
		// the id only once the lock is held (the column default, taken
		// before the trigger runs, is discarded). On SQLite one writer at
		// a time orders the ids already.
		postgres: []string{
			`CREATE FUNCTION events_in_commit_order() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				PERFORM pg_advisory_xact_lock(7283462);
				PERFORM pg_notify('handoff_events', '');
				NEW.id := nextval(pg_get_serial_sequence('events', 'id'));
				RETURN NEW;
			END $$`,
			`CREATE TRIGGER events_in_commit_order BEFORE INSERT ON events
				FOR EACH ROW EXECUTE FUNCTION events_in_commit_order()`,
		},
	},
}

// LatestVersion is the schema version this build expects.
func LatestVersion() int { return migrations[len(migrations)-1].version }

func (m migration) statements(d Dialect) []string {
	serial, ts := "BIGSERIAL PRIMARY KEY", "TIMESTAMPTZ"
	extra := m.postgres
	if d == SQLite {
		// AUTOINCREMENT: ids are never reused, so event ids only grow.
		serial, ts, extra = "INTEGER PRIMARY KEY AUTOINCREMENT", "TIMESTAMP", m.sqlite
	}
	r := strings.NewReplacer("{{serial}}", serial, "{{ts}}", ts)
	out := make([]string, 0, len(m.both)+len(extra))
	for _, s := range m.both {
		out = append(out, r.Replace(s))
	}
	return append(out, extra...)
}

// SchemaVersion reports the highest applied migration (0 on an empty database).
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	if !db.g.Migrator().HasTable("schema_migrations") {
		return 0, nil
	}
	var v int
	err := db.g.WithContext(ctx).Raw(`SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v).Error
	return v, err
}

// Migrate applies every migration not yet applied, each in its own
// transaction, and returns the versions it applied. Several processes may
// call it at once: on Postgres an advisory lock lets one of them do the work.
func (db *DB) Migrate(ctx context.Context) ([]int, error) {
	return db.migrateTo(ctx, LatestVersion())
}

// migrateTo applies the migrations not yet applied up to version upTo.
func (db *DB) migrateTo(ctx context.Context, upTo int) ([]int, error) {
	var applied []int
	err := db.g.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if db.Dialect == Postgres {
			if err := tx.Exec(`SELECT pg_advisory_xact_lock(7283461)`).Error; err != nil {
				return fmt.Errorf("taking the migration lock: %w", err)
			}
		}
		if err := tx.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY,
			name VARCHAR(200) NOT NULL,
			applied_at ` + map[Dialect]string{Postgres: "TIMESTAMPTZ", SQLite: "TIMESTAMP"}[db.Dialect] + ` NOT NULL
		)`).Error; err != nil {
			return fmt.Errorf("creating schema_migrations: %w", err)
		}
		var current int
		if err := tx.Raw(`SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current).Error; err != nil {
			return err
		}
		if current > LatestVersion() {
			return fmt.Errorf("database schema is at version %d, newer than this build knows (%d): upgrade handoff", current, LatestVersion())
		}
		for _, m := range migrations {
			if m.version <= current || m.version > upTo {
				continue
			}
			for _, stmt := range m.statements(db.Dialect) {
				if err := tx.Exec(stmt).Error; err != nil {
					return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
				}
			}
			if err := tx.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, time.Now().UTC()).Error; err != nil {
				return err
			}
			applied = append(applied, m.version)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return applied, nil
}
