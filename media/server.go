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

// Server is one media node's HTTP faces: signaling for browsers; control
// and metrics for the cluster.
type Server struct {
	SFU          *SFU
	controlToken string
	// public, internal, and mux with both.
	public, internal, mux *http.ServeMux
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
	s := &Server{SFU: sfu, controlToken: controlToken,
		public: http.NewServeMux(), internal: http.NewServeMux(), mux: http.NewServeMux()}
	health := func(mux *http.ServeMux) {
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"status":"ok"}`))
		})
		// Ready once it serves: a media node has no dependency to wait for.
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"status":"ok"}`))
		})
	}
	// What browsers reach: health and signaling.
	public := func(mux *http.ServeMux) {
		health(mux)
		mux.HandleFunc("GET /ws", sfu.ServeSignaling)
	}
	// What only the cluster reaches: metrics and the workers' control API.
	internal := func(mux *http.ServeMux) {
		health(mux)
		mux.Handle("GET /metrics", &sfu.Metrics)
		mux.HandleFunc("POST /control/calls/{call}", s.control(func(r *http.Request) (any, error) {
			return nil, sfu.CreateCall(r.Context(), r.PathValue("call"))
		}))
		mux.HandleFunc("DELETE /control/calls/{call}", s.control(func(r *http.Request) (any, error) {
			return nil, sfu.EndCall(r.Context(), r.PathValue("call"))
		}))
		mux.HandleFunc("PUT /control/calls/{call}/members/{participant}", s.control(func(r *http.Request) (any, error) {
			return nil, sfu.Attach(r.Context(), r.PathValue("call"), r.PathValue("participant"))
		}))
		mux.HandleFunc("DELETE /control/calls/{call}/members/{participant}", s.control(func(r *http.Request) (any, error) {
			return nil, sfu.Detach(r.Context(), r.PathValue("call"), r.PathValue("participant"))
		}))
		mux.HandleFunc("GET /control/calls/{call}/members", s.control(func(r *http.Request) (any, error) {
			members, ok := sfu.Members(r.PathValue("call"))
			if !ok {
				return nil, ErrNoSuchCall
			}
			return map[string]any{"members": members}, nil
		}))
	}
	public(s.public)
	internal(s.internal)
	internal(s.mux)
	s.mux.HandleFunc("GET /ws", sfu.ServeSignaling)
	return s, nil
}

// PublicHandler serves what browsers reach: health and signaling.
func (s *Server) PublicHandler() http.Handler { return s.public }

// InternalHandler serves what only the cluster should reach: metrics and
// the control API (behind its token too), on a listener of its own.
func (s *Server) InternalHandler() http.Handler { return s.internal }

// Handler serves both on one listener: for tests and single-host labs,
// never for a node browsers reach.
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
