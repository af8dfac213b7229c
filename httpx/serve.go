// Package httpx runs HTTP servers that stop gracefully with their context.
package httpx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Listen opens addr, naming the setting to change when the port is taken.
func Listen(addr, setting string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s (%s): %w; is another process using the port? choose another with %s", addr, setting, err, setting)
	}
	return l, nil
}

// Timeouts of every server: a client gets ReadHeaderTimeout to send its
// headers and ReadTimeout for the whole request (a slow body ties up no
// connection for long); an idle keep-alive connection closes after
// IdleTimeout. There is no write timeout: live streams write for hours;
// they lift the read deadline with KeepReading.
var (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 60 * time.Second
	IdleTimeout       = 2 * time.Minute
)

// KeepReading lifts the read deadline of a long-lived response (a live
// stream): past ReadTimeout the server would otherwise cancel its request.
func KeepReading(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
}

// Serve serves h on l until ctx ends, then gives in-flight requests up to
// 10 seconds to finish.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: ReadHeaderTimeout, ReadTimeout: ReadTimeout, IdleTimeout: IdleTimeout}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if serveErr := <-done; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	return err
}

// TLSFiles are a certificate chain and its key, PEM files; empty serves
// plain HTTP (behind a TLS-terminating proxy).
type TLSFiles struct {
	Cert, Key string
}

// On tells whether TLS is configured.
func (f TLSFiles) On() bool { return f.Cert != "" || f.Key != "" }

// Config loads the files into a server TLS configuration (TLS 1.2 and up).
// A missing half or an unreadable pair is an error that names the setting.
func (f TLSFiles) Config() (*tls.Config, error) {
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert / --tls-key: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// ServeTLS is Serve over TLS when files are configured (conf from
// files.Config), plain HTTP otherwise.
func ServeTLS(ctx context.Context, l net.Listener, h http.Handler, conf *tls.Config) error {
	if conf != nil {
		l = tls.NewListener(l, conf)
	}
	return Serve(ctx, l, h)
}
