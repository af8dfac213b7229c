package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/handoff-telehealth/handoff/codec"
)

// PurgedName stands in for the name of a patient whose visit was purged.
const PurgedName = "(removed)"

// Retention says how long data is kept; zero keeps it for good.
type Retention struct {
	// Visits: an ended visit's patient data (name, note) after its end.
	Visits time.Duration
	// Events: the live-event outbox (which quotes names).
	Events time.Duration
	// Audit: an audit row's detail and address; the row itself, its ids
	// and action stay for good.
	Audit time.Duration
}

// Purged counts what a purge removed.
type Purged struct {
	Visits, Events, AuditRows int64
}

// Purge removes what r says is kept no longer, as of now: ended visits'
// patient data, old events and every event of a purged visit, and old
// audit rows' detail and address. Each clinic whose visits were purged gets
// an audit row saying how many. Running it again removes nothing more.
func (db *DB) Purge(ctx context.Context, r Retention, now time.Time) (Purged, error) {
	var out Purged
	err := db.InTx(ctx, func(q Queries) error {
		g := q.Visits.c.g
		if r.Visits > 0 {
			cutoff := now.Add(-r.Visits)
			var rows []struct {
				ClinicID string
				N        int64
			}
			if err := g.Model(&Visit{}).Select("clinic_id, COUNT(*) AS n").
				Where("ended_at < ? AND purged_at IS NULL", cutoff).Group("clinic_id").Scan(&rows).Error; err != nil {
				return err
			}
			res := g.Model(&Visit{}).Where("ended_at < ? AND purged_at IS NULL", cutoff).
				Updates(map[string]any{"patient_name": PurgedName, "transfer_note": "", "purged_at": now})
			if res.Error != nil {
				return res.Error
			}
			out.Visits = res.RowsAffected
			for _, row := range rows {
				if err := q.Audit.Append(AuditEvent{ClinicID: row.ClinicID, At: now, ActorKind: "system", ActorID: "retention",
					Action: "retention.purged", Detail: fmt.Sprintf("%d ended visits' patient data", row.N)}); err != nil {
					return err
				}
			}
		}
		where, args := "visit_id IN (SELECT id FROM visits WHERE purged_at IS NOT NULL)", []any{}
		if r.Events > 0 {
			where, args = "created_at < ? OR "+where, []any{now.Add(-r.Events)}
		}
		res := g.Where(where, args...).Delete(&Event{})
		if res.Error != nil {
			return res.Error
		}
		out.Events = res.RowsAffected
		// A purged visit's conversation goes with its name.
		if err := g.Where("visit_id IN (SELECT id FROM visits WHERE purged_at IS NOT NULL)").Delete(&Message{}).Error; err != nil {
			return err
		}
		// So do the names its guests gave.
		if err := g.Model(&Guest{}).Where("name <> '' AND visit_id IN (SELECT id FROM visits WHERE purged_at IS NOT NULL)").
			Update("name", "").Error; err != nil {
			return err
		}
		if r.Audit > 0 {
			// The one change the audit trail's trigger lets through.
			res := g.Model(&AuditEvent{}).Where("at < ? AND (detail <> '' OR address <> '')", now.Add(-r.Audit)).
				Updates(map[string]any{"detail": "", "address": ""})
			if res.Error != nil {
				return res.Error
			}
			out.AuditRows = res.RowsAffected
		}
		// Spent or expired sign-in challenges are no one's data.
		return g.Where("expires_at < ?", now.Add(-24*time.Hour)).Delete(&MFAChallenge{}).Error
	})
	return out, err
}

// sealedColumns are the columns that hold Sealed values, with the key of
// their rows and which rows hold patient data still.
var sealedColumns = []struct {
	table, column, where string
	numericID            bool
}{
	{"visits", "patient_name", "purged_at IS NULL", false},
	{"visits", "transfer_note", "transfer_note <> ''", false},
	{"events", "payload", "", true},
	{"app_sessions", "data", "data IS NOT NULL", false},
	{"messages", "body", "", true},
	{"messages", "sender_name", "sender_name <> ''", true},
	{"guests", "name", "name <> ''", false},
	{"users", "totp_secret", "totp_secret <> ''", false},
	{"users", "totp_pending_secret", "totp_pending_secret <> ''", false},
}

// Reencrypt seals again, with the active data key, every Sealed value that
// another key sealed or that was written before encryption at rest, in
// batches, and counts them by column. After it, the old key can go.
// A value changed meanwhile is left to the next run (it is written with
// the active key anyway).
func (db *DB) Reencrypt(ctx context.Context) (map[string]int, error) {
	keys := dataKeys.Load()
	if keys == nil {
		return nil, errNoDataKeys
	}
	active := "hx1:" + keys.ActiveKeyID() + ":%"
	counts := map[string]int{}
	for _, col := range sealedColumns {
		name := col.table + "." + col.column
		var last any = ""
		if col.numericID {
			last = int64(0)
		}
		for range 1_000_000 { // bounded: a batch at a time, in key order
			var rows []struct {
				ID    string
				Value string
			}
			q := db.g.WithContext(ctx).Table(col.table).
				Select("id, "+col.column+" AS value").
				Where(col.column+" NOT LIKE ?", active).Where("id > ?", last).Order("id").Limit(500)
			if col.where != "" {
				q = q.Where(col.where)
			}
			if err := q.Scan(&rows).Error; err != nil {
				return counts, fmt.Errorf("reading %s: %w", name, err)
			}
			if len(rows) == 0 {
				break
			}
			for _, row := range rows {
				last = row.ID
				if col.numericID {
					n, err := strconv.ParseInt(row.ID, 10, 64)
					if err != nil {
						return counts, err
					}
					last = n
				}
				plain, err := keys.OpenString(row.Value)
				if err != nil {
					return counts, fmt.Errorf("%s of row %s: %w", name, row.ID, err)
				}
				resealed, err := keys.SealString(plain)
				if err != nil {
					return counts, err
				}
				res := db.g.WithContext(ctx).Table(col.table).Where("id = ? AND "+col.column+" = ?", last, row.Value).
					Update(col.column, resealed)
				if res.Error != nil {
					return counts, fmt.Errorf("writing %s: %w", name, res.Error)
				}
				counts[name] += int(res.RowsAffected)
			}
		}
	}
	return counts, nil
}

// SealedWith counts, by key id, the Sealed values in the database ("" for
// values not sealed): what a rotation has left to do.
func (db *DB) SealedWith(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	for _, col := range sealedColumns {
		var values []string
		q := db.g.WithContext(ctx).Table(col.table).Select(col.column)
		if col.where != "" {
			q = q.Where(col.where)
		}
		if err := q.Scan(&values).Error; err != nil {
			return nil, err
		}
		for _, v := range values {
			id, _ := codec.SealedKeyID(v)
			out[id]++
		}
	}
	return out, nil
}
