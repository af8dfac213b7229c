package api

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/handoff-telehealth/handoff/clinic"
)

// decodeBody runs decode on raw as a request body, as the handlers do.
func decodeBody(raw []byte, dst any) error {
	gin.SetMode(gin.ReleaseMode)
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	c.Request = httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(raw))
	c.Request.Body = http.MaxBytesReader(w, c.Request.Body, 64<<10)
	return decode(c, dst)
}

func checkDecodeError(t *testing.T, err error) {
	if err == nil {
		return
	}
	ae := toAPIError(err)
	if ae.Status != http.StatusBadRequest && ae.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("bad input must be a 400 or 413, got %T %v", err, err)
	}
}

func FuzzDecodeTransfer(f *testing.F) {
	for _, s := range []string{`{"targetRoomId":"x","note":"n"}`, `{"targetRoomId":`, `{"x":1}`, `[]`, `null`, `{"note":"\u0000"}`, "\xff\xfe", `{"targetRoomId":"a"}{"b":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var req transferRequest
		err := decodeBody(raw, &req)
		checkDecodeError(t, err)
		if err == nil && (!utf8.ValidString(req.TargetRoomID) || !utf8.ValidString(req.Note)) {
			t.Fatal("decoded text must be valid UTF-8")
		}
	})
}

func FuzzDecodeCheckIn(f *testing.F) {
	for _, s := range []string{`{"name":"Ada","consent":true}`, `{"name":"<script>alert(1)</script>","consent":true}`, `{"name":"Robert'); DROP TABLE visits;--","consent":true}`, `{"name":1}`, `{"name":"a","consent":"yes"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var req checkInRequest
		err := decodeBody(raw, &req)
		checkDecodeError(t, err)
		if err != nil {
			return
		}
		name, err := clinic.PatientName(req.Name)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		if name == "" || utf8.RuneCountInString(name) > clinic.MaxPatientNameLength || strings.IndexFunc(name, unicode.IsControl) >= 0 || name != strings.TrimSpace(name) {
			t.Fatalf("clinic.PatientName let %q through", name)
		}
	})
}

func FuzzDecodeLogin(f *testing.F) {
	for _, s := range []string{`{"email":"a@b.c","password":"p"}`, `{"email":["x"]}`, `{}`, strings.Repeat(`{"email":`, 100)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var req loginRequest
		checkDecodeError(t, decodeBody(raw, &req))
	})
}

func FuzzDecodeOpenApp(f *testing.F) {
	f.Add([]byte(`{"app":"notes","data":"x"}`))
	f.Add([]byte(`{"app":"notes","data":"` + strings.Repeat("x", 9000) + `"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var req openAppRequest
		checkDecodeError(t, decodeBody(raw, &req))
	})
}

func TestOversizedBodiesAreRefused(t *testing.T) {
	big := []byte(`{"name":"` + strings.Repeat("a", 70<<10) + `","consent":true}`)
	var req checkInRequest
	err := decodeBody(big, &req)
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("want 413, got %v", err)
	}
}
