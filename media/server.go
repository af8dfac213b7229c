// Package media is Handoff's media server: a pion SFU that carries the video
// calls, with an internal control API the transfer activities drive.
package media

import (
	"net/http"
)

// Server is one media node.
type Server struct {
	mux *http.ServeMux
}

// NewServer makes a media node with its HTTP endpoints.
func NewServer() *Server {
	s := &Server{mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	return s
}

// Handler serves the media node's HTTP endpoints.
func (s *Server) Handler() http.Handler { return s.mux }
