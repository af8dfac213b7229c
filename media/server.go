// Package media is Handoff's media server: a pion SFU that carries the video
// calls, with an internal control API the visit activities drive.
package media

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// Server is one media node's HTTP face: signaling, control, metrics.
type Server struct {
	SFU          *SFU
	controlToken string
	mux          *http.ServeMux
}

// NewServer makes a media node. secret signs media tokens (shared with the
// API); controlToken guards the control API (shared with the workers).
func NewServer(secret, controlToken string) (*Server, error) {
	return NewServerWith(secret, controlToken, Options{})
}

// NewServerWith is NewServer with a node's network and timing options.
func NewServerWith(secret, controlToken string, opts Options) (*Server, error) {
	sfu, err := NewSFUWith(secret, opts)
	if err != nil {
		return nil, err
	}
	s := &Server{SFU: sfu, controlToken: controlToken, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	// Ready once it serves: a media node has no dependency to wait for.
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	s.mux.Handle("GET /metrics", &sfu.Metrics)
	s.mux.HandleFunc("GET /ws", sfu.ServeSignaling)
	s.mux.HandleFunc("POST /control/calls/{call}", s.control(func(r *http.Request) (any, error) {
		return nil, sfu.CreateCall(r.Context(), r.PathValue("call"))
	}))
	s.mux.HandleFunc("DELETE /control/calls/{call}", s.control(func(r *http.Request) (any, error) {
		return nil, sfu.EndCall(r.Context(), r.PathValue("call"))
	}))
	s.mux.HandleFunc("PUT /control/calls/{call}/members/{participant}", s.control(func(r *http.Request) (any, error) {
		return nil, sfu.Attach(r.Context(), r.PathValue("call"), r.PathValue("participant"))
	}))
	s.mux.HandleFunc("DELETE /control/calls/{call}/members/{participant}", s.control(func(r *http.Request) (any, error) {
		return nil, sfu.Detach(r.Context(), r.PathValue("call"), r.PathValue("participant"))
	}))
	s.mux.HandleFunc("GET /control/calls/{call}/members", s.control(func(r *http.Request) (any, error) {
		members, ok := sfu.Members(r.PathValue("call"))
		if !ok {
			return nil, ErrNoSuchCall
		}
		return map[string]any{"members": members}, nil
	}))
	return s, nil
}

// Handler serves the media node's HTTP endpoints.
func (s *Server) Handler() http.Handler { return s.mux }

// control wraps a control endpoint: service token, JSON reply.
func (s *Server) control(fn func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if s.controlToken == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.controlToken)) != 1 {
			http.Error(w, `{"error":"service token required"}`, http.StatusUnauthorized)
			return
		}
		out, err := fn(r)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case errors.Is(err, ErrNoSuchCall):
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		case err != nil:
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		case out == nil:
			w.WriteHeader(http.StatusNoContent)
		default:
			_ = json.NewEncoder(w).Encode(out)
		}
	}
}
