package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/codec"
	"github.com/handoff-telehealth/handoff/store"
)

// CodecOperator is the actor of a decode: whoever holds the codec token (an
// operator, through the Temporal UI), known by address.
const CodecOperator = "codec-operator"

// maxAuditedVisits bounds the visits one decode request is audited for.
const maxAuditedVisits = 20

// AuditDecodes audits what the codec server decoded: for each visit whose
// data it showed (a payload naming its visit id, as every visit workflow's
// input and activity does), an audit row in that visit's clinic saying
// that the operator holding the codec token read it, from which address,
// in which namespace. Decodes naming no visit are logged, without content.
func AuditDecodes(db *store.DB, logger *slog.Logger) codec.Decoded {
	return func(r *http.Request, payloads []*commonpb.Payload) {
		ids := visitIDs(payloads)
		addr, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			addr = r.RemoteAddr
		}
		namespace := truncate(r.Header.Get("X-Namespace"), 100)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		defer cancel()
		audited := 0
		for _, id := range ids {
			v, err := db.With(ctx).Visits.Get(id)
			if errors.Is(err, store.ErrNotFound) {
				continue
			} else if err != nil {
				logger.Warn("codec decode not audited", "error", err)
				continue
			}
			row := store.AuditEvent{ClinicID: v.ClinicID, At: time.Now().UTC(), ActorKind: clinic.ActorSystem, ActorID: CodecOperator,
				Action: clinic.AuditPayloadsDecoded, VisitID: &v.ID, Address: addr, Detail: "Temporal payloads decoded; namespace " + namespace}
			if err := db.With(ctx).Audit.Append(row); err != nil {
				logger.Warn("codec decode not audited", "error", err)
				continue
			}
			audited++
		}
		logger.Info("codec decode", "payloads", len(payloads), "visits_audited", audited, "namespace", namespace, "address", addr)
	}
}

// visitIDs finds the visit ids the payloads name (a top-level "VisitID" or
// "visitId" of a JSON payload), at most maxAuditedVisits.
func visitIDs(payloads []*commonpb.Payload) []string {
	seen := map[string]bool{}
	var ids []string
	for _, p := range payloads {
		var fields map[string]json.RawMessage
		if json.Unmarshal(p.GetData(), &fields) != nil {
			continue
		}
		for _, key := range []string{"VisitID", "visitId"} {
			var id string
			if json.Unmarshal(fields[key], &id) == nil && id != "" && len(id) <= 36 && !seen[id] && len(ids) < maxAuditedVisits {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	return ids
}
