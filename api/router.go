// Package api is Handoff's REST API (Gin). This file is its table of
// contents: every route, the middleware around it, and who may call it.
package api

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"

	"github.com/handoff-telehealth/handoff/activities"
	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/mailer"
	"github.com/handoff-telehealth/handoff/media"
	"github.com/handoff-telehealth/handoff/metrics"
	"github.com/handoff-telehealth/handoff/store"
	"github.com/handoff-telehealth/handoff/tracing"
	"github.com/handoff-telehealth/handoff/web"
)

// Deps are what the handlers need.
type Deps struct {
	DB       *store.DB
	Temporal client.Client
	Logger   *slog.Logger
	// CodecServer decodes payloads for the Temporal UI; nil leaves it off.
	CodecServer http.Handler
	// SessionTTL and SessionIdle end provider sessions (defaults 12 h and
	// 30 min); AbandonAfter ends a visit whose patient left the waiting room
	// (0: never).
	SessionTTL, SessionIdle, AbandonAfter time.Duration
	// LoginRate and CheckInRate are requests per second per client address.
	LoginRate, CheckInRate float64
	// MediaTokens mints media tokens (nil: no media node); MediaURL is the
	// signaling WebSocket clients connect to.
	MediaTokens *media.Tokens
	MediaURL    string
	// MediaNodes, when set, are the registry's media nodes: each
	// participant is sent to its call's node, a waiting patient to the node
	// placement chooses; MediaURL is then unused.
	MediaNodes activities.MediaNodes
	// MediaOrigins, with MediaNodes, lists the nodes' signaling origins
	// (ws[s]://host) for the pages' Content-Security-Policy.
	MediaOrigins func() []string
	// ICEServers are the STUN/TURN servers pages are given, with TURN
	// credentials minted per participant (nil: none).
	ICEServers *media.ICEServers
	// Metrics records this process's figures and serves them at /metrics.
	Metrics *metrics.Registry
	// OpenSignup lets anyone create a clinic from the sign-in page (a first
	// run; off in production unless enabled).
	OpenSignup bool
	// PublicURL is where people reach the dashboard, for the links in
	// invitations and reset mail ("": the request's own host).
	PublicURL string
	// Mailer sends invitations and reset links (nil: links are only shown
	// to the admin who made them).
	Mailer mailer.Sender
	// AdminRate is administrative changes per second per client address
	// (bursts of 20).
	AdminRate float64
	// TrustedProxies are the addresses or CIDRs of reverse proxies whose
	// X-Forwarded-For names the client (none: the connection's address is
	// the client's).
	TrustedProxies []string
}

// handlers are the API's handlers with what they need.
type handlers struct {
	Deps
	patients *patientStreams
	streams  *streamCap
}

// NewRouter builds the HTTP handler of the API and the web pages.
func NewRouter(d Deps) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.ContextWithFallback = true // handlers pass c as the context: spans and deadlines flow on
	// The client's address (rate limits, audit) is the connection's, unless
	// it comes from a proxy named here: gin trusts every proxy by default,
	// which lets any client pick its address with X-Forwarded-For.
	if err := r.SetTrustedProxies(d.TrustedProxies); err != nil {
		d.Logger.Error("trusted proxies refused; trusting none", "error", err)
		_ = r.SetTrustedProxies(nil)
	}
	h := &handlers{Deps: d, patients: newPatientStreams(), streams: newStreamCap()}
	r.Use(gin.Recovery(), h.requestID, tracing.Gin(), h.accessLog, strictTransport)

	// Process health: liveness says the process runs, readiness says it can
	// serve (database and Temporal answer).
	r.GET("/healthz", h.live)
	r.GET("/readyz", h.ready)

	v1 := r.Group("/api/v1", h.errorsMiddleware, limitBody(64<<10), apiHeaders, limitIdempotencyKey, h.authenticate, requireSecondFactor)
	v1.GET("/openapi.json", openAPI)

	// Providers sign in (or reset a forgotten password by a mailed link);
	// patients check in by a room's link. Guessable things share one limit.
	loginRate := orDefault(d.LoginRate, 1)
	byAddress := rateLimit(loginRate, max(5, int(loginRate)))
	v1.POST("/auth/login", byAddress, h.login)
	v1.POST("/auth/mfa", byAddress, h.secondFactor)
	v1.POST("/auth/logout", requireProvider, h.logout)
	v1.POST("/auth/forgot", byAddress, h.forgotPassword)
	v1.POST("/auth/reset", byAddress, h.resetPassword)
	v1.GET("/checkin/:slug", h.publicRoom)
	checkInRate := orDefault(d.CheckInRate, 2)
	v1.POST("/checkin/:slug", rateLimit(checkInRate, max(10, int(checkInRate))), h.checkIn)

	// A clinic from nothing (when sign-up is open), and joining one by an
	// invitation's link.
	v1.GET("/signup", h.signupOpen)
	v1.POST("/signup", byAddress, h.signup)
	v1.GET("/invitations/by-token/:token", byAddress, h.showInvitation)
	v1.POST("/invitations/by-token/:token/accept", byAddress, h.acceptInvitation)

	// The provider, its clinic, rooms and waiting rooms.
	v1.GET("/me", requireProvider, h.me)
	v1.PATCH("/me", requireProvider, h.changeProfile)
	v1.POST("/me/password", requireProvider, byAddress, h.changePassword)
	v1.GET("/me/sessions", requireProvider, h.mySessions)
	v1.DELETE("/me/sessions/:id", requireProvider, h.endMySession)
	v1.POST("/me/sessions/sign-out-others", requireProvider, h.endMyOtherSessions)
	v1.GET("/me/mfa", requireProvider, h.myMFA)
	v1.POST("/me/mfa/enrol", requireProvider, h.startMFA)
	v1.POST("/me/mfa/confirm", requireProvider, byAddress, h.confirmMFA)
	v1.POST("/me/mfa/disable", requireProvider, byAddress, h.disableMFA)
	v1.GET("/rooms", requireProvider, h.listRooms)
	v1.GET("/rooms/:id/waiting", requireProvider, h.waitingRoom)

	// Running the clinic: people, rooms and plan, for the roles with the
	// power (clinic.Require); every change is an audit row.
	adminRate := orDefault(d.AdminRate, 5)
	admin := v1.Group("", requireProvider, rateLimit(adminRate, max(20, int(adminRate))))
	admin.GET("/clinic", requirePower(clinic.ManagePeople), h.clinicSettings)
	admin.PUT("/clinic/plan", requirePower(clinic.ManagePlan), h.changePlan)
	admin.PUT("/clinic/security", requirePower(clinic.ManageSecurity), h.changeSecurity)
	admin.PUT("/clinic/waiting", requirePower(clinic.ManageRooms), h.changeWaiting)
	admin.GET("/people", requirePower(clinic.ManagePeople), h.listPeople)
	admin.PATCH("/people/:id", requirePower(clinic.ManagePeople), h.changeRole)
	admin.POST("/people/:id/deactivate", requirePower(clinic.ManagePeople), h.deactivate)
	admin.POST("/people/:id/reset-link", requirePower(clinic.ManagePeople), h.issueResetLink)
	admin.POST("/people/:id/sign-out", requirePower(clinic.ManagePeople), h.signOutEverywhere)
	admin.POST("/people/:id/mfa-reset", requirePower(clinic.ManagePeople), h.resetMFA)
	admin.POST("/invitations", requirePower(clinic.ManagePeople), h.invite)
	admin.POST("/invitations/:id/resend", requirePower(clinic.ManagePeople), h.resendInvitation)
	admin.DELETE("/invitations/:id", requirePower(clinic.ManagePeople), h.revokeInvitation)
	admin.POST("/rooms", requirePower(clinic.ManageRooms), h.createRoom)
	admin.PATCH("/rooms/:id", h.changeRoom) // a provider may change its own room's
	admin.PUT("/rooms/:id/members/:userId", requirePower(clinic.ManageRooms), h.changeMember(true))
	admin.DELETE("/rooms/:id/members/:userId", requirePower(clinic.ManageRooms), h.changeMember(false))
	admin.POST("/rooms/:id/archive", requirePower(clinic.ManageRooms), h.archiveRoom)

	// A visit: its card (provider) or view (its patient), and what can happen to it.
	v1.GET("/visits/:id", requireAnyone, h.getVisit)
	v1.POST("/visits/:id/admit", requireProvider, h.admit)
	v1.POST("/visits/:id/transfer", requireProvider, h.transfer)
	v1.POST("/visits/:id/leave", requirePatient, h.leave)
	v1.POST("/visits/:id/end", requireProvider, h.end)
	v1.POST("/visits/:id/hold", requireProvider, h.hold)

	// A visit's conversation (patient and providers; it travels with the
	// visit), and a message to everyone waiting in a room.
	v1.GET("/visits/:id/messages", requireAnyone, h.listMessages)
	v1.POST("/visits/:id/messages", requireAnyone, rateLimit(orDefault(d.CheckInRate, 2)*5, 20), h.sendMessage)
	v1.POST("/rooms/:id/messages", requireProvider, h.messageRoom)

	// Guests of a patient's call (an interpreter, family, a clinician): a
	// provider in the call makes a single-use link, lets the guest in from
	// the lobby, or removes them. The guest names themself at the link and
	// then sees only itself and the call's chat.
	v1.POST("/visits/:id/guests", requireProvider, h.inviteGuest)
	v1.POST("/visits/:id/guests/:guestId/admit", requireProvider, h.admitGuest)
	v1.DELETE("/visits/:id/guests/:guestId", requireProvider, h.removeGuest)
	v1.GET("/guest-links/:token", byAddress, h.showGuestLink)
	v1.POST("/guest-links/:token", byAddress, h.arriveAsGuest)
	v1.GET("/guest", requireGuest, h.guestSelf)
	v1.POST("/guest/leave", requireGuest, h.guestLeaves)
	v1.GET("/guest/messages", requireGuest, h.guestMessages)
	v1.POST("/guest/messages", requireGuest, rateLimit(orDefault(d.CheckInRate, 2)*5, 20), h.guestSays)

	// Apps in a call; their data never outlives them.
	v1.POST("/calls/:id/apps", requireProvider, h.openApp)
	v1.DELETE("/calls/:id/apps/:appId", requireProvider, h.closeApp)

	// Media: where to connect, with what tokens.
	v1.GET("/media/session", requireInCall, h.mediaSession)
	v1.POST("/media/rejoin", requireInCall, h.rejoinMedia)
	v1.POST("/calls/:id/join", requireProvider, h.joinCall)

	// Live events, and the clinic's audit trail.
	v1.GET("/events", requireAnyone, h.events)
	v1.GET("/audit", requireProvider, h.listAudit)

	// Payload codec for the Temporal UI, behind its own token.
	if d.CodecServer != nil {
		r.Any("/codec/*path", gin.WrapH(http.StripPrefix("/codec", d.CodecServer)))
	}

	// Web pages: the provider dashboard at /, the patient page at each
	// room's link /c/<slug>. Unknown API paths answer in the API's own shape.
	pages := http.FileServer(http.FS(web.Files()))
	pageHeaders := pageHeaders(d.MediaURL, d.MediaOrigins)
	r.GET("/c/:slug", pageHeaders, h.patientPage)
	r.GET("/g", pageHeaders, func(c *gin.Context) { c.FileFromFS("guest.html", http.FS(web.Files())) })
	r.GET("/i18n/index.json", pageHeaders, languageList)
	r.NoRoute(pageHeaders, func(c *gin.Context) {
		if strings.HasPrefix(c.Request.URL.Path, "/api/") {
			c.JSON(http.StatusNotFound, gin.H{"error": gin.H{"code": "not_found", "message": "no such API route"}})
			return
		}
		pages.ServeHTTP(c.Writer, c.Request)
	})
	return r
}

// NewInternalRouter serves what only the cluster should reach, on a
// listener of its own: health, and the process's metrics (which name
// clinics and routes, and are nobody else's business).
func NewInternalRouter(d Deps) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	h := &handlers{Deps: d}
	r.Use(gin.Recovery())
	r.GET("/healthz", h.live)
	r.GET("/readyz", h.ready)
	if d.Metrics != nil {
		r.GET("/metrics", gin.WrapH(d.Metrics.Handler()))
	}
	return r
}

// patientPage serves the patient page at a room's link; a room's earlier
// link redirects to its current one.
func (h *handlers) patientPage(c *gin.Context) {
	slug := c.Param("slug")
	if _, err := h.DB.With(c).Rooms.BySlug(slug); err != nil && len(slug) <= 80 {
		if r, err := h.DB.With(c).Rooms.ByOldSlug(slug, time.Now().UTC()); err == nil {
			c.Redirect(http.StatusMovedPermanently, "/c/"+r.Slug)
			return
		}
	}
	c.FileFromFS("patient.html", http.FS(web.Files()))
}

// languageList is the patient page's languages, from its catalogues.
func languageList(c *gin.Context) {
	langs, err := web.Languages()
	if err != nil {
		c.JSON(http.StatusInternalServerError, gin.H{"error": gin.H{"code": "internal", "message": "language catalogues unreadable"}})
		return
	}
	c.JSON(http.StatusOK, langs)
}

// strictTransport tells browsers that reached Handoff over HTTPS to come
// back only that way (HSTS), for a year.
func strictTransport(c *gin.Context) {
	if c.Request.TLS != nil {
		c.Header("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
	}
	c.Next()
}

// pageHeaders keep pages to their own origin's scripts and out of caches
// (patient pages show patient data). Pages may open WebSockets to their own
// origin and to the media node's signaling URL, nowhere else.
func pageHeaders(mediaURL string, mediaOrigins func() []string) gin.HandlerFunc {
	policy := func(urls []string) string {
		connect := "'self'"
		for _, m := range urls {
			if u, err := url.Parse(m); err == nil && (u.Scheme == "ws" || u.Scheme == "wss") && u.Host != "" {
				connect += " " + u.Scheme + "://" + u.Host
			}
		}
		return "default-src 'self'; connect-src " + connect + "; media-src 'self' blob: mediastream:; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	}
	fixed := policy([]string{mediaURL})
	return func(c *gin.Context) {
		csp := fixed
		if mediaOrigins != nil {
			csp = policy(mediaOrigins()) // the nodes registered now
		}
		c.Header("Content-Security-Policy", csp)
		c.Header("X-Content-Type-Options", "nosniff")
		c.Header("Referrer-Policy", "no-referrer")
		c.Header("Cache-Control", "no-store")
		c.Next()
	}
}

func orDefault(v, def float64) float64 {
	if v > 0 {
		return v
	}
	return def
}
