package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
)

// The API document (openapi.json) is checked against the API itself: every
// request the API tests make through (*service).do, and the status and
// headers of every event stream they open, are validated against it with
// kin-openapi. A request the document calls invalid must be refused (4xx);
// every response must be one the document describes: a listed status, its
// headers, and a body that matches its schema (objects are closed, so a
// field a handler adds that the document lacks fails the test).

var (
	openAPIOnce   sync.Once
	openAPISpec   *openapi3.T
	openAPIRouter routers.Router
	openAPIErr    error
)

// loadOpenAPI loads and validates the document once per test binary.
func loadOpenAPI(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	openAPIOnce.Do(func() {
		// "uuid" is no format of OpenAPI 3.0's own; kin-openapi checks it
		// only once defined.
		openapi3.DefineStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC4122))
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromFile("openapi.json")
		if err != nil {
			openAPIErr = fmt.Errorf("loading openapi.json: %w", err)
			return
		}
		if err := doc.Validate(loader.Context); err != nil {
			openAPIErr = fmt.Errorf("openapi.json is not a valid OpenAPI document: %w", err)
			return
		}
		r, err := gorillamux.NewRouter(doc)
		if err != nil {
			openAPIErr = fmt.Errorf("routing openapi.json: %w", err)
			return
		}
		openAPISpec, openAPIRouter = doc, r
	})
	require.NoError(t, openAPIErr)
	return openAPISpec, openAPIRouter
}

// tokenPrefixes are what each security scheme's token starts with.
var tokenPrefixes = map[string][]string{
	"providerSession": {"hs_"},
	"visitToken":      {"hv_"},
	"accessToken":     {"hs_", "hv_"},
	"guestToken":      {"hg_"},
}

// authenticateByDocument checks that a request carries the kind of token the
// operation's security requirement names (not that the token is valid: the
// API decides that).
func authenticateByDocument(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	req := in.RequestValidationInput.Request
	var token string
	switch in.SecurityScheme.Type {
	case "http":
		tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return errors.New("no Authorization: Bearer token")
		}
		token = tok
	case "apiKey":
		token = req.URL.Query().Get(in.SecurityScheme.Name)
	default:
		return fmt.Errorf("security scheme type %q is not checked by this test", in.SecurityScheme.Type)
	}
	prefixes, ok := tokenPrefixes[in.SecuritySchemeName]
	if !ok {
		return fmt.Errorf("security scheme %q is not known to this test", in.SecuritySchemeName)
	}
	for _, p := range prefixes {
		if strings.HasPrefix(token, p) {
			return nil
		}
	}
	return fmt.Errorf("%s needs a token starting with %v", in.SecuritySchemeName, prefixes)
}

// documentCheck records what a service's requests validated against the
// document.
type documentCheck struct {
	mu        sync.Mutex
	validated map[string]int // "METHOD /documented/path STATUS" → count
}

func newDocumentCheck() *documentCheck { return &documentCheck{validated: map[string]int{}} }

func (d *documentCheck) record(key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.validated[key]++
}

func (d *documentCheck) seen(key string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.validated[key] > 0
}

// checkExchange validates one request and its response against the
// document. req is the request as sent (its body already read: reqBody is
// what was sent); respBody is the whole response body, or nil for an event
// stream (stream), whose body is not read here. Mismatches fail the test
// with Errorf, so it may run on any goroutine.
func (s *service) checkExchange(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte, stream bool) {
	t := s.t
	t.Helper()
	doc, router := loadOpenAPI(t)
	ctx := context.Background()
	what := req.Method + " " + req.URL.RequestURI()

	route, params, err := router.FindRoute(req)
	if err != nil {
		// Not an operation of the document: the API must not have one either.
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("openapi: %s is not in the document (%v) but the API answered %d: %s", what, err, resp.StatusCode, respBody)
			return
		}
		if err := doc.Components.Schemas["Error"].Value.VisitJSON(decodeJSON(respBody), openapi3.VisitAsResponse()); err != nil {
			t.Errorf("openapi: %s: the 404 for an unknown route is not an Error: %v\n%s", what, err, respBody)
		}
		s.openapi.record("undocumented 404")
		return
	}
	key := fmt.Sprintf("%s %s %d", req.Method, route.Path, resp.StatusCode)

	vreq := req.Clone(ctx)
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	vreq.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(reqBody)), nil }
	vreq.ContentLength = int64(len(reqBody))
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: authenticateByDocument, IncludeResponseStatus: true}}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && (resp.StatusCode < 400 || resp.StatusCode >= 500) {
		t.Errorf("openapi: %s: the document refuses this request but the API answered %d: %v\nrequest: %s\nresponse: %s",
			what, resp.StatusCode, err, reqBody, respBody)
	}

	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body:    io.NopCloser(bytes.NewReader(respBody)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: stream}}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("openapi: %s: the response does not match the document: %v\nresponse: %s", what, err, respBody)
		return
	}
	documented := route.Operation.Responses.Status(resp.StatusCode).Value
	switch {
	case len(documented.Content) == 0 && len(respBody) > 0:
		t.Errorf("openapi: %s: the document gives %d no body, the API sent %q", what, resp.StatusCode, respBody)
		return
	case stream:
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if documented.Content.Get(mt) == nil {
			t.Errorf("openapi: %s: the document gives %d no %q content", what, resp.StatusCode, mt)
			return
		}
	}
	s.openapi.record(key)
}

func decodeJSON(raw []byte) any {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	return v
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	require.NoError(t, doc.Validate(context.Background()))
	// Every object a response can hold is closed: a field a handler adds
	// that the document lacks fails the suite, not a client.
	var open []string
	var walk func(where string, s *openapi3.SchemaRef, seen map[*openapi3.Schema]bool)
	walk = func(where string, ref *openapi3.SchemaRef, seen map[*openapi3.Schema]bool) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		seen[ref.Value] = true
		sc := ref.Value
		if ref.Ref != "" {
			where = ref.Ref
		}
		if sc.Type.Is("object") && len(sc.Properties) > 0 && (sc.AdditionalProperties.Has == nil || *sc.AdditionalProperties.Has) {
			open = append(open, where)
		}
		for name, p := range sc.Properties {
			walk(where+"."+name, p, seen)
		}
		walk(where+"[]", sc.Items, seen)
		for i, sub := range slices.Concat(sc.AllOf, sc.OneOf, sc.AnyOf) {
			walk(where+"/"+strconv.Itoa(i), sub, seen)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status, r := range op.Responses.Map() {
				for ct, mt := range r.Value.Content {
					if path == "/openapi.json" {
						continue // the document itself is open by nature
					}
					walk(fmt.Sprintf("%s %s %s %s", method, path, status, ct), mt.Schema, map[*openapi3.Schema]bool{})
				}
			}
		}
	}
	sort.Strings(open)
	require.Empty(t, open, "response objects without additionalProperties: false")
}

// TestEveryDocumentedSuccessBodyIsValidated walks the main flows of the API
// and then requires that every success status the document gives (every
// route) was answered, and validated against the document, at least once.
func TestEveryDocumentedSuccessBodyIsValidated(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	s := adminService(t, testdb.PostgresDSN(t), nil)
	must := func(r response, status int) response {
		t.Helper()
		require.Equal(t, status, r.Status, r.Raw)
		return r
	}

	served := must(s.do("GET", "/openapi.json", "", nil), http.StatusOK)
	file, err := os.ReadFile("openapi.json")
	require.NoError(t, err)
	require.Equal(t, string(file), served.Raw, "the API serves this document")

	// Providers sign in; an admin reads who it is.
	leeTok, patelTok, deskTok, adminTok := s.login(lee), s.login(patel), s.login(frontDsk), s.login(admin)
	must(s.do("GET", "/me", leeTok, nil), http.StatusOK)
	must(s.do("GET", "/me", deskTok, nil), http.StatusOK)
	patelEvents := s.stream(patelTok, "") // Dr. Patel online: rooms list him
	must(s.do("GET", "/rooms", leeTok, nil), http.StatusOK)

	// A patient checks in by a room's link and waits.
	must(s.do("GET", "/checkin/dr-lee", "", nil), http.StatusOK)
	must(s.do("GET", "/checkin/riverside-reception", "", nil), http.StatusOK)
	visit, patientTok := s.checkIn("dr-lee", "Pat Document")
	patientEvents := s.stream(patientTok, "")
	must(s.do("GET", "/rooms/"+s.roomID("dr-lee")+"/waiting", leeTok, nil), http.StatusOK)
	must(s.do("GET", "/visits/"+visit, leeTok, nil), http.StatusOK)
	must(s.do("GET", "/visits/"+visit, patientTok, nil), http.StatusOK)
	must(s.do("GET", "/media/session", patientTok, nil), http.StatusOK)

	// Transfer from the waiting room, with a note: the card now says who
	// sent the patient, from where, and why.
	tr := must(s.do("POST", "/visits/"+visit+"/transfer", leeTok, map[string]string{"targetRoomId": s.roomID("dr-patel"), "note": "labs are in",
		"fromRoomId": s.roomID("dr-lee")}, "Idempotency-Key", "doc-transfer-1"), http.StatusOK)
	require.Equal(t, true, tr.Body["targetOnline"])
	patientEvents.next(t, "visit.transferred")
	card := must(s.do("GET", "/visits/"+visit, patelTok, nil), http.StatusOK)
	require.Equal(t, "labs are in", card.str("visit", "note"))
	require.Equal(t, "Dr. Maya Lee", card.str("visit", "transferredBy", "name"))
	mine := must(s.do("GET", "/visits/"+visit, patientTok, nil), http.StatusOK)
	require.NotEmpty(t, mine.str("visit", "message"))
	must(s.do("GET", "/rooms/"+s.roomID("dr-patel")+"/waiting", patelTok, nil), http.StatusOK)
	must(s.do("POST", "/visits/"+visit+"/messages", patelTok, map[string]string{"text": "I will be with you in a minute"}), http.StatusCreated)
	must(s.do("POST", "/visits/"+visit+"/messages", patientTok, map[string]string{"text": "Thank you"}), http.StatusCreated)
	must(s.do("GET", "/visits/"+visit+"/messages", patientTok, nil), http.StatusOK)
	must(s.do("POST", "/rooms/"+s.roomID("dr-patel")+"/messages", patelTok, map[string]string{"text": "Running late"}), http.StatusCreated)

	// Admit into a 1:1 call: the call, its media, the waiting room's
	// in-call list, an app opened and closed, a rejoin on both sides.
	ad := must(s.do("POST", "/visits/"+visit+"/admit", patelTok, nil), http.StatusOK)
	callID := ad.str("call", "id")
	require.NotEmpty(t, callID)
	patientEvents.next(t, "visit.admitted")
	must(s.do("GET", "/rooms/"+s.roomID("dr-patel")+"/waiting", patelTok, nil), http.StatusOK)
	require.Equal(t, callID, must(s.do("GET", "/visits/"+visit, patelTok, nil), http.StatusOK).str("visit", "callId"))
	require.Equal(t, callID, must(s.do("GET", "/visits/"+visit, patientTok, nil), http.StatusOK).str("visit", "callId"))
	require.NotEmpty(t, must(s.do("GET", "/media/session?callId="+callID, patelTok, nil), http.StatusOK).str("joinToken"))
	require.NotEmpty(t, must(s.do("GET", "/media/session", patientTok, nil), http.StatusOK).str("joinToken"))
	app := must(s.do("POST", "/calls/"+callID+"/apps", patelTok, map[string]string{"app": "notes", "data": "private"}), http.StatusCreated)
	must(s.do("DELETE", "/calls/"+callID+"/apps/"+app.str("app", "id"), patelTok, nil), http.StatusNoContent)
	must(s.do("POST", "/media/rejoin", patientTok, nil), http.StatusOK)
	must(s.do("POST", "/media/rejoin", patelTok, map[string]string{"callId": callID}), http.StatusOK)
	must(s.do("POST", "/media/rejoin", patelTok, nil), http.StatusOK) // no call named: a fresh session only
	// A guest: a link, a name, the lobby, let in; the call's chat and media;
	// they leave. Another invitation is withdrawn unused.
	invited := must(s.do("POST", "/visits/"+visit+"/guests", patelTok, nil), http.StatusCreated)
	link := guestLinkToken(t, invited.str("link"))
	must(s.do("GET", "/guest-links/"+link, "", nil), http.StatusOK)
	guestTok := must(s.do("POST", "/guest-links/"+link, "", map[string]string{"name": "Ana Interpreter"}), http.StatusCreated).str("token")
	must(s.do("GET", "/guest", guestTok, nil), http.StatusOK)
	must(s.do("POST", "/visits/"+visit+"/guests/"+invited.str("guest", "id")+"/admit", patelTok, nil), http.StatusNoContent)
	must(s.do("GET", "/media/session", guestTok, nil), http.StatusOK)
	must(s.do("POST", "/media/rejoin", guestTok, nil), http.StatusOK)
	must(s.do("POST", "/guest/messages", guestTok, map[string]string{"text": "Hola"}), http.StatusCreated)
	must(s.do("GET", "/guest/messages", guestTok, nil), http.StatusOK)
	must(s.do("POST", "/guest/leave", guestTok, nil), http.StatusNoContent)
	unused := must(s.do("POST", "/visits/"+visit+"/guests", patelTok, nil), http.StatusCreated)
	must(s.do("DELETE", "/visits/"+visit+"/guests/"+unused.str("guest", "id"), patelTok, nil), http.StatusNoContent)
	// Back to the waiting room, and admitted again.
	must(s.do("POST", "/visits/"+visit+"/hold", patelTok, nil), http.StatusOK)
	patientEvents.next(t, "visit.held")
	ad = must(s.do("POST", "/visits/"+visit+"/admit", patelTok, nil), http.StatusOK)
	callID = ad.str("call", "id")

	// Transfer from the call to a room where nobody is online: the 1:1 call
	// ends for the sender, and the sender is warned.
	tr = must(s.do("POST", "/visits/"+visit+"/transfer", patelTok, map[string]string{"targetRoomId": s.roomID("jordan-kim")}), http.StatusOK)
	require.Equal(t, true, tr.Body["callEnded"])
	require.NotEmpty(t, tr.str("warning"))
	patelEvents.next(t, "visit.transferred")

	// A group call in a shared room; one patient leaves, a provider ends the
	// other's visit.
	two, twoTok := s.checkIn("riverside-reception", "Pat Two")
	three, _ := s.checkIn("riverside-reception", "Pat Three")
	g := must(s.do("POST", "/visits/"+two+"/admit", deskTok, map[string]string{}), http.StatusOK)
	must(s.do("POST", "/visits/"+three+"/admit", deskTok, map[string]string{"callId": g.str("call", "id")}), http.StatusOK)
	must(s.do("POST", "/calls/"+g.str("call", "id")+"/join", leeTok, nil), http.StatusOK) // Dr. Lee, of Reception too, joins
	must(s.do("POST", "/visits/"+two+"/leave", twoTok, nil), http.StatusNoContent)
	must(s.do("POST", "/visits/"+three+"/end", deskTok, nil), http.StatusNoContent)

	// The audit trail, a page back, and signing out.
	audit := must(s.do("GET", "/audit", adminTok, nil), http.StatusOK)
	rows := audit.Body["audit"].([]any)
	require.NotEmpty(t, rows, audit.Raw)
	last := rows[len(rows)-1].(map[string]any)["id"]
	must(s.do("GET", fmt.Sprintf("/audit?before=%v", last), adminTok, nil), http.StatusOK)
	must(s.do("POST", "/auth/logout", leeTok, nil), http.StatusNoContent)

	// A clinic from nothing: sign-up, profile, plan, people, rooms.
	must(s.do("GET", "/signup", "", nil), http.StatusOK)
	f := s.found("Document Clinic")
	must(s.do("PATCH", "/me", f.ownerTok, map[string]string{"displayName": "Dr. Document"}), http.StatusOK)
	must(s.do("POST", "/me/password", f.ownerTok, map[string]string{"currentPassword": adminPassword, "newPassword": "Document-Pass-2026"}), http.StatusNoContent)
	must(s.do("GET", "/clinic", f.ownerTok, nil), http.StatusOK)
	must(s.do("PUT", "/clinic/plan", f.ownerTok, map[string]string{"plan": "premium"}), http.StatusOK)
	must(s.do("PUT", "/clinic/waiting", f.ownerTok, map[string]int{"waitAlertMinutes": 10}), http.StatusOK)
	inv := must(s.do("POST", "/invitations", f.ownerTok, map[string]string{"email": "ada@document.example", "role": "member"}), http.StatusCreated)
	must(s.do("GET", "/invitations/by-token/"+tokenOf(t, inv.str("link")), "", nil), http.StatusOK)
	inv = must(s.do("POST", "/invitations/"+inv.str("invitation", "id")+"/resend", f.ownerTok, nil), http.StatusOK)
	ada := must(s.do("POST", "/invitations/by-token/"+tokenOf(t, inv.str("link"))+"/accept", "", map[string]string{"name": "Ada Rivers", "password": adminPassword}), http.StatusCreated)
	adaID := ada.str("user", "id")
	gone := must(s.do("POST", "/invitations", f.ownerTok, map[string]string{"email": "gone@document.example", "role": "staff"}), http.StatusCreated)
	must(s.do("DELETE", "/invitations/"+gone.str("invitation", "id"), f.ownerTok, nil), http.StatusNoContent)
	must(s.do("GET", "/people", f.ownerTok, nil), http.StatusOK)
	must(s.do("PATCH", "/people/"+adaID, f.ownerTok, map[string]string{"role": "admin"}), http.StatusOK)
	reset := must(s.do("POST", "/people/"+adaID+"/reset-link", f.ownerTok, nil), http.StatusCreated)
	must(s.do("POST", "/auth/reset", "", map[string]string{"token": tokenOf(t, reset.str("link")), "password": "Ada-Resets-Her-Pass"}), http.StatusOK)
	must(s.do("POST", "/auth/forgot", "", map[string]string{"email": "ada@document.example"}), http.StatusAccepted)
	room := must(s.do("POST", "/rooms", f.ownerTok, map[string]string{"name": "Document Team", "slug": "document-team"}), http.StatusCreated)
	roomID := room.str("room", "id")
	must(s.do("PATCH", "/rooms/"+roomID, f.ownerTok, map[string]string{"name": "Document Team B", "slug": "document-team-b"}), http.StatusOK)
	must(s.do("PUT", "/rooms/"+roomID+"/members/"+adaID, f.ownerTok, nil), http.StatusNoContent)
	must(s.do("DELETE", "/rooms/"+roomID+"/members/"+adaID, f.ownerTok, nil), http.StatusNoContent)
	must(s.do("POST", "/rooms/"+roomID+"/archive", f.ownerTok, nil), http.StatusOK)
	must(s.do("GET", "/me/sessions", f.ownerTok, nil), http.StatusOK)
	other := s.do("POST", "/auth/login", "", map[string]string{"email": "ada@document.example", "password": "Ada-Resets-Her-Pass"})
	sessions := must(s.do("GET", "/me/sessions", other.str("token"), nil), http.StatusOK).Body["sessions"].([]any)
	must(s.do("DELETE", "/me/sessions/"+sessions[len(sessions)-1].(map[string]any)["id"].(string), other.str("token"), nil), http.StatusNoContent)
	must(s.do("POST", "/me/sessions/sign-out-others", other.str("token"), nil), http.StatusNoContent)
	must(s.do("POST", "/people/"+adaID+"/sign-out", f.ownerTok, nil), http.StatusNoContent)

	// Two-factor sign-in: enrol, require it, sign in with a code, reset a
	// person's, turn one's own off.
	must(s.do("GET", "/me/mfa", f.ownerTok, nil), http.StatusOK)
	secret, recovery := s.enrol(f.ownerTok)
	must(s.do("PUT", "/clinic/security", f.ownerTok, map[string]bool{"requireMfa": true}), http.StatusOK)
	must(s.do("PUT", "/clinic/security", f.ownerTok, map[string]bool{"requireMfa": false}), http.StatusOK)
	challenge := must(s.do("POST", "/auth/login", "", map[string]string{"email": "documentclinic@owner.example", "password": "Document-Pass-2026"}), http.StatusOK)
	must(s.do("POST", "/auth/mfa", "", map[string]string{"challenge": challenge.str("challenge"), "code": codeAt(t, secret, time.Now().Add(30*time.Second))}), http.StatusOK)
	require.NoError(t, s.db.Gorm().Exec("UPDATE users SET totp_enabled_at = ? WHERE id = ?", time.Now().UTC(), adaID).Error)
	must(s.do("POST", "/people/"+adaID+"/mfa-reset", f.ownerTok, nil), http.StatusNoContent)
	must(s.do("POST", "/me/mfa/disable", f.ownerTok, map[string]string{"password": "Document-Pass-2026", "recoveryCode": recovery[0]}), http.StatusOK)
	must(s.do("POST", "/people/"+adaID+"/deactivate", f.ownerTok, nil), http.StatusOK)
	must(s.do("GET", "/audit?action=room.&actorId="+f.ownerID, f.ownerTok, nil), http.StatusOK)

	var missing []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status := range op.Responses.Map() {
				if n, err := strconv.Atoi(status); err == nil && n < 300 {
					if key := fmt.Sprintf("%s %s %d", method, path, n); !s.openapi.seen(key) {
						missing = append(missing, key)
					}
				}
			}
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing, "documented successes no request of this test validated")
}
