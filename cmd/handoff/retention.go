package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/handoff-telehealth/handoff/config"
	"github.com/handoff-telehealth/handoff/store"
)

const day = 24 * time.Hour

// registerRetention adds the retention settings: how long each kind of data
// is kept (0: for good).
func registerRetention(fs *config.FlagSet, r *store.Retention) {
	fs.DurationVar(&r.Visits, "retain-visits", 90*day, "keep an ended visit's patient data (name, hand-off note) this long after it ends, e.g. 2160h for 90 days (0: for good)")
	fs.DurationVar(&r.Events, "retain-events", 30*day, "keep live events (which quote names) this long (0: for good; at least 1h)")
	fs.DurationVar(&r.Audit, "retain-audit", 6*365*day, "keep audit rows' detail and client address this long; the rows, their ids and actions stay for good (0: for good)")
}

func checkRetention(r store.Retention) error {
	if r.Visits < 0 || r.Events < 0 || r.Audit < 0 {
		return fmt.Errorf("retention periods cannot be negative")
	}
	if r.Events > 0 && r.Events < time.Hour {
		return fmt.Errorf("--retain-events must be at least 1h: a reconnecting page replays the last minutes")
	}
	return nil
}

// purgeEvery runs the retention purge every period until ctx ends, the
// first time after a random wait of up to a period (at least a minute):
// API processes restarting in a loop, or a fleet started together, do not
// all purge at start and at the same moments. Several may run it: a purge
// is idempotent.
func purgeEvery(period time.Duration, db *store.DB, r store.Retention, logger *slog.Logger) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if r == (store.Retention{}) {
			<-ctx.Done()
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Minute + rand.N(period)):
		}
		for {
			p, err := db.Purge(ctx, r, time.Now().UTC())
			if err != nil && ctx.Err() == nil {
				logger.Warn("retention purge failed; trying again later", "error", err)
			} else if p.Visits+p.Events+p.AuditRows > 0 {
				logger.Info("retention purge", "visits", p.Visits, "events", p.Events, "audit_rows", p.AuditRows)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(period):
			}
		}
	}
}

// adminPurge runs the retention purge once.
func adminPurge(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := config.NewFlagSet("admin purge", "remove the data the retention settings no longer keep, once", stdout)
	opts := backendOptions{schema: schemaRequired, patientData: true}
	opts.registerDatabase(fs)
	var r store.Retention
	registerRetention(fs, &r)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkRetention(r); err != nil {
		return err
	}
	b, err := connect(ctx, opts, logger)
	if err != nil {
		return err
	}
	defer b.Close()
	p, err := b.db.Purge(ctx, r, time.Now().UTC())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "purged: %d visits' patient data, %d events, %d audit rows' detail\n", p.Visits, p.Events, p.AuditRows)
	return nil
}

// adminReencrypt seals every patient-data value with the first data key:
// the step between prepending a new key and dropping the old one.
func adminReencrypt(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := config.NewFlagSet("admin reencrypt", "seal all patient data in the database with the first of --data-keys", stdout)
	opts := backendOptions{schema: schemaRequired, patientData: true}
	opts.registerDatabase(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := connect(ctx, opts, logger)
	if err != nil {
		return err
	}
	defer b.Close()
	counts, err := b.db.Reencrypt(ctx)
	cols := make([]string, 0, len(counts))
	for c := range counts {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	for _, c := range cols {
		fmt.Fprintf(stdout, "%s: %d sealed again\n", c, counts[c])
	}
	if err != nil {
		return err
	}
	left, err := b.db.SealedWith(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "done: %d values, all sealed with the first data key; the others can be removed from --data-keys\n", total(left))
	return nil
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
