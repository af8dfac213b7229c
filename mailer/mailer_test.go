package mailer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/internal/testkit/smtptest"
	"github.com/handoff-telehealth/handoff/mailer"
)

func smtpFor(s *smtptest.Server, mode string) mailer.SMTP {
	return mailer.SMTP{Host: "127.0.0.1", Port: s.Addr.Port, User: s.User, Password: s.Password, From: "Handoff <no-reply@clinic.example>",
		TLS: mode, RootCAs: s.RootCAs, Timeout: 5 * time.Second}
}

// A mail travels encrypted, signed in, to its recipient, with its text,
// over STARTTLS and over implicit TLS.
func TestSendsOverTLS(t *testing.T) {
	for _, mode := range []string{mailer.TLSStart, mailer.TLSImplicit} {
		t.Run(mode, func(t *testing.T) {
			srv := smtptest.Start(t, mode == mailer.TLSImplicit)
			m := smtpFor(srv, mode)
			require.NoError(t, m.Check())
			require.NoError(t, m.Send(context.Background(), mailer.Message{To: "ada@clinic.example", Subject: "Hello", Body: "line one\nline two"}))
			got := srv.Next(t, 5*time.Second)
			require.Equal(t, "ada@clinic.example", got.To)
			require.Equal(t, "no-reply@clinic.example", got.From)
			require.Equal(t, "handoff", got.User)
			require.True(t, got.TLS)
			require.Contains(t, got.Data, "Subject: Hello\r\n")
			require.Contains(t, got.Data, "line one\r\nline two")
		})
	}
}

// A server whose certificate is not trusted gets no mail, and no password.
func TestRefusesAnUntrustedServer(t *testing.T) {
	srv := smtptest.Start(t, false)
	m := smtpFor(srv, mailer.TLSStart)
	m.RootCAs = nil
	err := m.Send(context.Background(), mailer.Message{To: "ada@clinic.example", Subject: "x", Body: "x"})
	require.Error(t, err)
	require.Contains(t, err.Error(), "STARTTLS")
}

// Bad settings and header injection are refused.
func TestChecks(t *testing.T) {
	require.Error(t, mailer.SMTP{Port: 25, From: "a@b.example"}.Check())
	require.Error(t, mailer.SMTP{Host: "h", Port: 0, From: "a@b.example"}.Check())
	require.Error(t, mailer.SMTP{Host: "h", Port: 25, From: "a@b.example", TLS: "ssl"}.Check())
	require.Error(t, mailer.SMTP{Host: "h", Port: 25, From: "not an address"}.Check())
	err := mailer.SMTP{Host: "127.0.0.1", Port: 1, From: "a@b.example"}.Send(context.Background(), mailer.Message{To: "x@y.example\r\nBcc: z@w.example", Subject: "s"})
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "line break"))
}
