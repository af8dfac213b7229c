package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/handoff-telehealth/handoff/clinic"
)

// The bodies the API reads. Each is decoded strictly (decode) and checked
// by its own check method, which asks the domain's rules (package clinic)
// and nothing else.

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (r *loginRequest) check() error {
	if r.Email == "" || r.Password == "" || len(r.Email) > 320 || len(r.Password) > 200 {
		return errBadRequest("email and password are required")
	}
	r.Email = strings.ToLower(strings.TrimSpace(r.Email))
	return nil
}

type checkInRequest struct {
	Name    string `json:"name"`
	Consent bool   `json:"consent"`
}

func (r *checkInRequest) check() error {
	name, err := clinic.PatientName(r.Name)
	if err != nil {
		return err
	}
	r.Name = name
	return clinic.CheckConsent(r.Consent)
}

type admitRequest struct {
	CallID string `json:"callId"`
}

func (r *admitRequest) check() error { return nil }

type transferRequest struct {
	TargetRoomID string `json:"targetRoomId"`
	Note         string `json:"note"`
	// FromRoomID is the room the sender saw the patient in (optional): if
	// the patient has been moved since, the sender is told so (409) rather
	// than that it cannot act for the room the patient is in now.
	FromRoomID string `json:"fromRoomId"`
	// KeepGuests: the call's guests go along to the new room's lobby
	// (otherwise they leave with the call).
	KeepGuests bool `json:"keepGuests"`
}

func (r *transferRequest) check() error {
	if r.TargetRoomID == "" {
		return errBadRequest("targetRoomId is required")
	}
	if err := clinic.CheckNote(r.Note); err != nil {
		return err
	}
	r.Note = strings.TrimSpace(r.Note)
	return nil
}

type openAppRequest struct {
	App  string `json:"app"`
	Data string `json:"data"`
}

func (r *openAppRequest) check() error { return clinic.CheckApp(r.App, r.Data) }

type rejoinRequest struct {
	CallID string `json:"callId"`
}

func (r *rejoinRequest) check() error { return nil }

// request is a body the API reads.
type request interface{ check() error }

// bind decodes the body into req and checks it.
func bind(c *gin.Context, req request) error {
	if err := decode(c, req); err != nil {
		return err
	}
	return req.check()
}

// serveRequest answers a request that carries a body: read reads it into a
// fresh R (bind or bindOptional, which run its checks), serve does the work,
// and status with serve's body is the answer.
func serveRequest[R any, P interface {
	*R
	request
}, B any](c *gin.Context, read func(*gin.Context, request) error, status int, serve func(*gin.Context, R) (B, error)) {
	var req R
	if err := read(c, P(&req)); err != nil {
		fail(c, err)
		return
	}
	body, err := serve(c, req)
	reply(c, status, body, err)
}

// bindOptional is bind for a body that may be left out.
func bindOptional(c *gin.Context, req request) error {
	if c.Request.ContentLength == 0 {
		return req.check()
	}
	return bind(c, req)
}

// decode reads a JSON body strictly: unknown fields and trailing data are
// errors, and so is text that is not valid UTF-8.
func decode(c *gin.Context, dst any) error {
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return newError(http.StatusRequestEntityTooLarge, "too_large", "request body too large")
		}
		return errBadRequest("cannot read the request body")
	}
	if !utf8.Valid(body) {
		return errBadRequest("the request body is not valid UTF-8")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return errBadRequest("malformed JSON: " + err.Error())
	}
	if dec.More() {
		return errBadRequest("malformed JSON: more than one value")
	}
	return nil
}

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 200

// idempotencyKey is the client's Idempotency-Key, the update id of the
// operation: a retried request gets the first one's answer.
func idempotencyKey(c *gin.Context) string {
	if k := strings.TrimSpace(c.GetHeader("Idempotency-Key")); k != "" {
		return k
	}
	return uuid.NewString()
}

// pathID is the :id of the path when it is a well-formed id; anything else
// names nothing that exists.
func pathID(c *gin.Context, what string) (string, error) {
	id := c.Param("id")
	if _, err := uuid.Parse(id); err != nil {
		return "", errNotFound(what)
	}
	return id, nil
}

// Clinic administration (accounts.go, people.go, roomadmin.go).

type signupRequest struct {
	ClinicName  string `json:"clinicName"`
	OwnerName   string `json:"ownerName"`
	DisplayName string `json:"displayName"`
	Email       string `json:"email"`
	Password    string `json:"password"`
}

func (r *signupRequest) check() (err error) {
	if r.ClinicName, err = clinic.ClinicName(r.ClinicName); err != nil {
		return err
	}
	if r.OwnerName, err = clinic.PersonName("ownerName", r.OwnerName); err != nil {
		return err
	}
	if r.DisplayName == "" {
		r.DisplayName = r.OwnerName
	}
	if r.DisplayName, err = clinic.PersonName("displayName", r.DisplayName); err != nil {
		return err
	}
	if r.Email, err = clinic.Email(r.Email); err != nil {
		return err
	}
	return clinic.CheckPassword("password", r.Password)
}

// newAccount is what a person sets on an invitation's page.
type newAccount struct {
	Name        string `json:"name"`
	DisplayName string `json:"displayName"`
	Password    string `json:"password"`
}

func (r *newAccount) check() (err error) {
	if r.Name, err = clinic.PersonName("name", r.Name); err != nil {
		return err
	}
	if r.DisplayName == "" {
		r.DisplayName = r.Name
	}
	if r.DisplayName, err = clinic.PersonName("displayName", r.DisplayName); err != nil {
		return err
	}
	return clinic.CheckPassword("password", r.Password)
}

type forgotRequest struct {
	Email string `json:"email"`
}

func (r *forgotRequest) check() (err error) {
	r.Email, err = clinic.Email(r.Email)
	return err
}

type resetRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

func (r *resetRequest) check() error {
	if r.Token == "" || len(r.Token) > 200 {
		return errBadRequest("token is required")
	}
	return clinic.CheckPassword("password", r.Password)
}

type profileRequest struct {
	Name        *string `json:"name"`
	DisplayName *string `json:"displayName"`
}

func (r *profileRequest) check() error {
	if r.Name == nil && r.DisplayName == nil {
		return errBadRequest("send name, displayName or both")
	}
	for field, v := range map[string]*string{"name": r.Name, "displayName": r.DisplayName} {
		if v != nil {
			s, err := clinic.PersonName(field, *v)
			if err != nil {
				return err
			}
			*v = s
		}
	}
	return nil
}

type passwordRequest struct {
	CurrentPassword string `json:"currentPassword"`
	NewPassword     string `json:"newPassword"`
}

func (r *passwordRequest) check() error {
	if r.CurrentPassword == "" || len(r.CurrentPassword) > 200 {
		return errBadRequest("currentPassword is required")
	}
	if err := clinic.CheckPassword("newPassword", r.NewPassword); err != nil {
		return err
	}
	if r.NewPassword == r.CurrentPassword {
		return errBadRequest("newPassword must differ from the current password")
	}
	return nil
}

type inviteRequest struct {
	Email string      `json:"email"`
	Role  clinic.Role `json:"role"`
}

func (r *inviteRequest) check() (err error) {
	if r.Email, err = clinic.Email(r.Email); err != nil {
		return err
	}
	r.Role, err = clinic.ParseRole(string(r.Role))
	return err
}

type roleRequest struct {
	Role clinic.Role `json:"role"`
}

func (r *roleRequest) check() (err error) {
	r.Role, err = clinic.ParseRole(string(r.Role))
	return err
}

type planRequest struct {
	Plan    clinic.Plan `json:"plan"`
	Confirm bool        `json:"confirm"`
}

func (r *planRequest) check() (err error) {
	r.Plan, err = clinic.ParsePlan(string(r.Plan))
	return err
}

type newRoomRequest struct {
	Name string `json:"name"`
	Slug string `json:"slug"`
}

func (r *newRoomRequest) check() (err error) {
	if r.Name, err = clinic.RoomName(r.Name); err != nil {
		return err
	}
	if r.Slug == "" {
		r.Slug = clinic.SlugFrom(r.Name)
	}
	r.Slug, err = clinic.CheckSlug(r.Slug)
	return err
}

type roomChangeRequest struct {
	Name *string `json:"name"`
	Slug *string `json:"slug"`
}

func (r *roomChangeRequest) check() error {
	if r.Name == nil && r.Slug == nil {
		return errBadRequest("send name, slug or both")
	}
	if r.Name != nil {
		s, err := clinic.RoomName(*r.Name)
		if err != nil {
			return err
		}
		*r.Name = s
	}
	if r.Slug != nil {
		s, err := clinic.CheckSlug(*r.Slug)
		if err != nil {
			return err
		}
		*r.Slug = s
	}
	return nil
}

type archiveRequest struct {
	MoveToRoomID string `json:"moveToRoomId"`
}

func (r *archiveRequest) check() error { return nil }
