// Package smtptest is a small SMTP server for tests: a real SMTP
// conversation over TCP on loopback, with STARTTLS or implicit TLS under a
// certificate it makes, AUTH PLAIN, and the mail it received.
package smtptest

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoff-telehealth/handoff/internal/testkit/testcert"
)

// Mail is one message as the server received it.
type Mail struct {
	From, To string
	User     string // who signed in (AUTH PLAIN), "" if nobody
	TLS      bool   // the message travelled encrypted
	Data     string
}

// Server is a running test SMTP server.
type Server struct {
	Addr     *net.TCPAddr
	RootCAs  *x509.CertPool // trusts the server's certificate
	Implicit bool           // TLS from the first byte (else STARTTLS)
	// User and Password are the only credentials AUTH accepts.
	User, Password string

	tls  *tls.Config
	mu   sync.Mutex
	mail []Mail
	got  chan struct{}
}

// Start runs a server until the test ends.
func Start(t testing.TB, implicitTLS bool) *Server {
	t.Helper()
	tc := testcert.New(t)
	cert, pool := tc.Cert, tc.Pool
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: l.Addr().(*net.TCPAddr), RootCAs: pool, Implicit: implicitTLS, User: "handoff", Password: "mail-secret",
		tls: &tls.Config{Certificates: []tls.Certificate{cert}}, got: make(chan struct{}, 100)}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

// Next waits (at most timeout) for the next message received.
func (s *Server) Next(t testing.TB, timeout time.Duration) Mail {
	t.Helper()
	select {
	case <-s.got:
	case <-time.After(timeout):
		t.Fatalf("no mail within %s", timeout)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mail[0]
	s.mail = s.mail[1:]
	return m
}

// Pending is how many received messages Next has not taken yet.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mail)
}

func (s *Server) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	encrypted := false
	if s.Implicit {
		tc := tls.Server(c, s.tls)
		if tc.Handshake() != nil {
			return
		}
		c, encrypted = tc, true
	}
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	say := func(line string) { _, _ = w.WriteString(line + "\r\n"); _ = w.Flush() }
	say("220 smtptest ESMTP")
	var m Mail
	for i := 0; i < 100; i++ { // a conversation has a handful of commands
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(strings.SplitN(cmd, " ", 2)[0])
		switch {
		case verb == "EHLO" || verb == "HELO":
			if !encrypted {
				say("250-smtptest")
				say("250-STARTTLS")
			} else {
				say("250-smtptest")
			}
			say("250 AUTH PLAIN")
		case verb == "STARTTLS" && !encrypted:
			say("220 go ahead")
			tc := tls.Server(c, s.tls)
			if tc.Handshake() != nil {
				return
			}
			c, encrypted = tc, true
			r, w = bufio.NewReader(c), bufio.NewWriter(c)
		case verb == "AUTH":
			parts := strings.Fields(cmd)
			raw, _ := base64.StdEncoding.DecodeString(parts[len(parts)-1])
			creds := strings.Split(string(raw), "\x00")
			if len(creds) != 3 || creds[1] != s.User || creds[2] != s.Password {
				say("535 bad credentials")
				continue
			}
			m.User = creds[1]
			say("235 ok")
		case verb == "MAIL":
			m.From = address(cmd)
			say("250 ok")
		case verb == "RCPT":
			m.To = address(cmd)
			say("250 ok")
		case verb == "DATA":
			say("354 go on")
			var data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(l, "."))
			}
			m.Data, m.TLS = data.String(), encrypted
			s.mu.Lock()
			s.mail = append(s.mail, m)
			s.mu.Unlock()
			s.got <- struct{}{}
			m = Mail{User: m.User}
			say("250 queued")
		case verb == "QUIT":
			say("221 bye")
			return
		default:
			say("502 not implemented")
		}
	}
}

func address(cmd string) string {
	if i, j := strings.IndexByte(cmd, '<'), strings.IndexByte(cmd, '>'); i >= 0 && j > i {
		return cmd[i+1 : j]
	}
	return ""
}
