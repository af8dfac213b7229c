// Package mailer sends Handoff's mail (invitations, password reset links)
// through an SMTP server: Go's net/smtp, over implicit TLS or STARTTLS.
// Mail carries links for staff only, never patient data.
package mailer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"strconv"
	"strings"
	"time"
)

// Message is one plain-text mail.
type Message struct {
	To, Subject, Body string
}

// Sender sends mail; nil means no mail server is configured.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// TLS modes: implicit TLS (port 465), STARTTLS (587), or none (a relay on
// the same host only).
const (
	TLSImplicit = "tls"
	TLSStart    = "starttls"
	TLSNone     = "none"
)

// SMTP is a mail server.
type SMTP struct {
	Host     string
	Port     int
	User     string
	Password string
	From     string
	TLS      string // TLSImplicit, TLSStart (default) or TLSNone
	// RootCAs verifies the server's certificate (nil: the system's).
	RootCAs *x509.CertPool
	// Timeout bounds one mail's whole conversation (default 15 s).
	Timeout time.Duration
}

// Check refuses settings that cannot send.
func (s SMTP) Check() error {
	switch {
	case s.Host == "":
		return errors.New("the SMTP host is required")
	case s.Port <= 0 || s.Port > 65535:
		return errors.New("the SMTP port must be 1-65535")
	case s.TLS != "" && s.TLS != TLSImplicit && s.TLS != TLSStart && s.TLS != TLSNone:
		return fmt.Errorf("SMTP TLS must be %s, %s or %s", TLSImplicit, TLSStart, TLSNone)
	}
	if _, err := mail.ParseAddress(s.From); err != nil {
		return fmt.Errorf("the SMTP from address: %w", err)
	}
	return nil
}

// Send delivers m in one SMTP conversation.
func (s SMTP) Send(ctx context.Context, m Message) error {
	if strings.ContainsAny(m.To+m.Subject, "\r\n") {
		return errors.New("mail header with a line break")
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	tlsConf := &tls.Config{ServerName: s.Host, RootCAs: s.RootCAs, MinVersion: tls.VersionTLS12}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connecting to the mail server: %w", err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if s.TLS == TLSImplicit {
		tc := tls.Client(conn, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("TLS with the mail server: %w", err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, s.Host)
	if err != nil {
		return fmt.Errorf("greeting the mail server: %w", err)
	}
	defer c.Close()
	if s.TLS == "" || s.TLS == TLSStart {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("the mail server does not offer STARTTLS")
		}
		if err := c.StartTLS(tlsConf); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if s.User != "" {
		if err := c.Auth(smtp.PlainAuth("", s.User, s.Password, s.Host)); err != nil {
			return fmt.Errorf("signing in to the mail server: %w", err)
		}
	}
	from, _ := mail.ParseAddress(s.From)
	if err := c.Mail(from.Address); err != nil {
		return err
	}
	if err := c.Rcpt(m.To); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(compose(s.From, m, time.Now())); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// compose writes the mail's headers and body with CRLF line ends.
func compose(from string, m Message, at time.Time) []byte {
	var b strings.Builder
	for _, h := range [][2]string{{"From", from}, {"To", m.To}, {"Subject", m.Subject}, {"Date", at.Format(time.RFC1123Z)},
		{"MIME-Version", "1.0"}, {"Content-Type", "text/plain; charset=utf-8"}, {"Content-Transfer-Encoding", "8bit"}} {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(strings.ReplaceAll(strings.ReplaceAll(m.Body, "\r\n", "\n"), "\n", "\r\n"))
	b.WriteString("\r\n")
	return []byte(b.String())
}
