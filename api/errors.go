package api

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgconn"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/handoff-telehealth/handoff/clinic"
	"github.com/handoff-telehealth/handoff/store"
)

// apiError is an error with the status and code the client sees. Handlers
// return these; the errors middleware writes them.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Message }

func newError(status int, code, msg string) *apiError {
	return &apiError{Status: status, Code: code, Message: msg}
}

var (
	errUnauthorized = newError(http.StatusUnauthorized, "unauthorized", "sign in first: send Authorization: Bearer <token>")
	errNotFound     = func(what string) error { return clinic.NotFoundError(what) }
	errBadRequest   = func(msg string) *apiError { return newError(http.StatusBadRequest, "bad_request", msg) }
)

// ruleStatus is the HTTP status of each kind of the domain's rejections
// (clinic.Kind), whether the API, the workflow or an activity said no; the
// code the client reads is the domain's (clinic.Code).
var ruleStatus = map[clinic.Kind]int{
	clinic.Invalid:        http.StatusBadRequest,
	clinic.NotFound:       http.StatusNotFound,
	clinic.Forbidden:      http.StatusForbidden,
	clinic.PlanRequired:   http.StatusForbidden,
	clinic.Conflict:       http.StatusConflict,
	clinic.SameRoom:       http.StatusUnprocessableEntity,
	clinic.TargetRoomGone: http.StatusConflict,
	clinic.TransferFailed: http.StatusConflict,
}

func ruleError(kind clinic.Kind, msg string) (*apiError, bool) {
	status, ok := ruleStatus[kind]
	if !ok {
		return nil, false
	}
	return newError(status, clinic.Code(kind), msg), true
}

// toAPIError turns any error into what the client may see: rule errors keep
// their message; anything unexpected becomes a 500 or 503 with no details.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var rule *clinic.Rejection
	if errors.As(err, &rule) {
		if ae, ok := ruleError(rule.Kind, rule.Message); ok {
			ae.Code = rule.ErrCode()
			return ae
		}
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		if ae, ok := ruleError(appErr.Type(), appErr.Message()); ok {
			return ae
		}
	}
	var notFound *serviceerror.NotFound
	var timeout *client.WorkflowUpdateServiceTimeoutOrCanceledError
	var unavailable *serviceerror.Unavailable
	var notReady *serviceerror.WorkflowNotReady
	switch {
	case errors.As(err, &notFound):
		return newError(http.StatusConflict, "visit_closed", "the visit is no longer active")
	case errors.Is(err, store.ErrNotFound):
		return newError(http.StatusNotFound, clinic.Code(clinic.NotFound), "resource not found")
	case errors.As(err, &timeout), errors.Is(err, context.DeadlineExceeded):
		return newError(http.StatusGatewayTimeout, "timeout", "the visit did not answer in time; retry with the same Idempotency-Key")
	case errors.As(err, &unavailable), errors.As(err, &notReady), isDatabaseDown(err):
		return newError(http.StatusServiceUnavailable, "unavailable", "a service Handoff depends on is unavailable; retry shortly")
	}
	return newError(http.StatusInternalServerError, "internal", "something went wrong; it has been logged")
}

// isDatabaseDown recognizes a database that cannot be reached or went away
// mid-query: the client should retry, it is not Handoff's bug.
func isDatabaseDown(err error) bool {
	var netErr *net.OpError
	var connectErr *pgconn.ConnectError
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &netErr), errors.As(err, &connectErr),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, driver.ErrBadConn), errors.Is(err, context.Canceled):
		return true
	case errors.As(err, &pgErr):
		// 08: connection exception; 57P: the server is shutting down or restarting.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P")
	}
	return strings.Contains(err.Error(), "conn closed") || strings.Contains(err.Error(), "connection refused")
}

// errorsMiddleware writes the first error a handler recorded as
// {"error": {"code", "message"}}, logging the unexpected ones without
// request bodies (they can hold patient data).
func (h *handlers) errorsMiddleware(c *gin.Context) {
	c.Next()
	if len(c.Errors) == 0 || c.Writer.Written() {
		return
	}
	err := c.Errors[0].Err
	ae := toAPIError(err)
	if ae.Status >= 500 {
		// Only the error's type: database errors quote rows, and rows hold
		// patient names.
		h.Logger.Error("request failed", "request_id", c.GetString(requestIDKey), "route", c.FullPath(), "status", ae.Status, "error_type", fmt.Sprintf("%T", errors.Unwrap(err)), "error_kind", fmt.Sprintf("%T", err))
	}
	if ae.Status == http.StatusForbidden || ae.Status == http.StatusNotFound {
		h.auditDenied(c, ae.Status)
	}
	c.AbortWithStatusJSON(ae.Status, gin.H{"error": gin.H{"code": ae.Code, "message": ae.Message}})
}

// auditDenied records, in the caller's own clinic's trail, that a signed-in
// caller was refused something named by an id: the route's pattern and the
// status, never the id (it may be another clinic's).
func (h *handlers) auditDenied(c *gin.Context, status int) {
	cl := callerOf(c)
	if cl == nil || !strings.Contains(c.FullPath(), "/:") {
		return
	}
	row := store.AuditEvent{At: time.Now().UTC(), Action: clinic.AuditAccessDenied, Address: c.ClientIP(),
		Detail: fmt.Sprintf("%s %s: %d", c.Request.Method, c.FullPath(), status)}
	if cl.User != nil {
		row.ClinicID, row.ActorKind, row.ActorID = cl.Clinic.ID, clinic.ActorUser, cl.User.ID
	} else {
		row.ClinicID, row.ActorKind, row.ActorID = cl.Visit.ClinicID, clinic.ActorPatient, cl.Visit.ID
	}
	if err := h.DB.With(context.WithoutCancel(c)).Audit.Append(row); err != nil {
		h.Logger.Error("audit row not written", "action", row.Action, "error_type", fmt.Sprintf("%T", err))
	}
}

// fail records err for the errors middleware and stops the handler chain.
func fail(c *gin.Context, err error) {
	_ = c.Error(err)
	c.Abort()
}

// reply writes body with status (no body when nil), or err.
func reply(c *gin.Context, status int, body any, err error) {
	switch {
	case err != nil:
		fail(c, err)
	case body == nil:
		c.Status(status)
	default:
		c.JSON(status, body)
	}
}
