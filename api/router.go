// Package api is Handoff's REST API (Gin). This file is its table of
// contents: every route, the middleware around it, and who may call it.
package api

import (
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"

	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/web"
)

// Deps are what the handlers need.
type Deps struct {
	DB       *store.DB
	Temporal client.Client
	Logger   *slog.Logger
	// CodecServer decodes payloads for the Temporal UI; nil leaves it off.
	CodecServer http.Handler
}

// NewRouter builds the HTTP handler of the API and the web pages.
func NewRouter(d Deps) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	h := &handlers{Deps: d}

	// Process health: liveness says the process runs, readiness says it can
	// serve (database and Temporal answer).
	r.GET("/healthz", h.live)
	r.GET("/readyz", h.ready)

	// Payload codec for the Temporal UI, behind its own token.
	if d.CodecServer != nil {
		r.Any("/codec/*path", gin.WrapH(http.StripPrefix("/codec", d.CodecServer)))
	}

	// Web pages.
	r.NoRoute(gin.WrapH(http.FileServer(http.FS(web.Files()))))
	return r
}
