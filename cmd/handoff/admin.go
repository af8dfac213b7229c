package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/config"
	"github.com/handoff-telehealth/handoff/store"
)

const adminSummary = "operator tasks against the configured database: `admin create-clinic` makes a clinic and its owner, `admin purge` applies the retention settings, `admin reencrypt` seals patient data with the first data key"

// adminCommands are the operator's subcommands.
var adminCommands = map[string]func(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error{
	"create-clinic": createClinic,
	"purge":         adminPurge,
	"reencrypt":     adminReencrypt,
}

// runAdmin runs an operator's subcommand.
func runAdmin(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	if len(args) == 0 || adminCommands[args[0]] == nil {
		fmt.Fprintf(stdout, "Usage: handoff admin create-clinic|purge|reencrypt [flags]\n\n%s\n", adminSummary)
		if len(args) == 0 || args[0] == "--help" || args[0] == "-h" {
			return nil
		}
		return fmt.Errorf("admin: unknown subcommand %q", args[0])
	}
	return adminCommands[args[0]](ctx, args[1:], stdout, logger)
}

// createClinic is how an operator makes a clinic when sign-up is closed:
// the clinic, its owner (whose password is read from a file, never from the
// command line, which other users of the host can read) and the owner's
// personal room, audited like a sign-up.
func createClinic(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := config.NewFlagSet("admin create-clinic", "create a clinic and its owner in the configured database", stdout)
	opts := backendOptions{schema: schemaRequired}
	opts.registerDatabase(fs)
	var name, owner, display, email, pwFile, plan string
	fs.StringVar(&name, "clinic-name", "", "the clinic's name (required)")
	fs.StringVar(&owner, "owner-name", "", "the owner's full name (required)")
	fs.StringVar(&display, "owner-display-name", "", "the name patients see (default: the full name)")
	fs.StringVar(&email, "owner-email", "", "the owner's email, their sign-in (required)")
	fs.StringVar(&pwFile, "owner-password-file", "", "file holding the owner's password (- for standard input) (required)")
	fs.StringVar(&plan, "plan", string(clinic.PlanFree), "free, pro or premium")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := founding(name, owner, display, email, pwFile, plan)
	if err != nil {
		return err
	}
	b, err := connect(ctx, opts, logger)
	if err != nil {
		return err
	}
	defer b.Close()
	var c store.Clinic
	var u store.User
	err = b.db.InTx(ctx, func(q store.Queries) error {
		c, u, err = q.FoundClinic(f, time.Now().UTC())
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "clinic %q created (id %s, plan %s); owner %s can sign in\n", c.Name, c.ID, c.Plan, u.Email)
	return nil
}

// founding checks an operator's input with the domain's rules, as the
// sign-up page does.
func founding(name, owner, display, email, pwFile, plan string) (store.Founding, error) {
	var f store.Founding
	var err error
	if f.ClinicName, err = clinic.ClinicName(name); err != nil {
		return f, fmt.Errorf("--clinic-name: %w", err)
	}
	if f.OwnerFullName, err = clinic.PersonName("--owner-name", owner); err != nil {
		return f, err
	}
	if display == "" {
		display = f.OwnerFullName
	}
	if f.OwnerDisplayName, err = clinic.PersonName("--owner-display-name", display); err != nil {
		return f, err
	}
	if f.Email, err = clinic.Email(email); err != nil {
		return f, fmt.Errorf("--owner-email: %w", err)
	}
	if f.Plan, err = clinic.ParsePlan(plan); err != nil {
		return f, fmt.Errorf("--plan: %w", err)
	}
	if pwFile == "" {
		return f, errors.New("--owner-password-file is required")
	}
	var raw []byte
	if pwFile == "-" {
		raw, err = io.ReadAll(io.LimitReader(os.Stdin, 1024))
	} else {
		raw, err = os.ReadFile(pwFile)
	}
	if err != nil {
		return f, fmt.Errorf("--owner-password-file: %w", err)
	}
	pw := strings.TrimRight(string(raw), "\r\n")
	if err := clinic.CheckPassword("the owner's password", pw); err != nil {
		return f, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	f.PasswordHash = string(hash)
	return f, err
}
