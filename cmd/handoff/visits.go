package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/handoff-telehealth/handoff/config"
	"github.com/handoff-telehealth/handoff/workflows"
)

const visitsSummary = "list visits for an on-call engineer: --failed shows transfers that failed and were compensated"

// runVisits reads the audit trail (not Temporal) so that it works whatever
// the Temporal UI's retention, and prints ids only: no patient data.
func runVisits(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := config.NewFlagSet("visits", visitsSummary, stdout)
	var db config.Database
	db.Register(fs, productionDBDefault)
	failed := fs.Bool("failed", false, "only transfers that failed (the patient was put back)")
	since := fs.Duration("since", 24*time.Hour, "how far back to look")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := connect(ctx, backendOptions{db: &db, patientData: true}, logger)
	if err != nil {
		return err
	}
	defer b.Close()
	rows, err := b.db.With(ctx).Audit.TransfersSince(time.Now().UTC().Add(-*since), *failed)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tACTION\tWORKFLOW ID\tFROM ROOM\tTO ROOM\tDETAIL")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.At.Format(time.RFC3339), r.Action, workflows.VisitWorkflowID(deref(r.VisitID)),
			deref(r.RoomID), deref(r.TargetRoomID), r.Detail)
	}
	return tw.Flush()
}

func deref(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}
