package api_test

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/internal/testkit/testdb"
)

// codeAt is what the person's authenticator app shows at t: made by the
// TOTP library itself, as an app would.
func codeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCode(secret, at)
	require.NoError(t, err)
	return code
}

// enrol adds an authenticator for tok's person and returns its secret and
// recovery codes.
func (s *service) enrol(tok string) (string, []string) {
	t := s.t
	t.Helper()
	r := s.do("POST", "/me/mfa/enrol", tok, nil)
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	secret := r.str("secret")
	require.Contains(t, r.str("otpauthUrl"), "otpauth://totp/Handoff:")
	require.Contains(t, r.str("otpauthUrl"), "secret="+secret)
	qr, ok := strings.CutPrefix(r.str("qrCode"), "data:image/png;base64,")
	require.True(t, ok)
	raw, err := base64.StdEncoding.DecodeString(qr)
	require.NoError(t, err)
	img, err := png.Decode(bytes.NewReader(raw))
	require.NoError(t, err, "the QR code is a PNG an app can scan")
	require.Equal(t, 240, img.Bounds().Dx())

	// A code from somewhere else does not turn it on.
	wrong := s.do("POST", "/me/mfa/confirm", tok, map[string]string{"code": "000000"})
	if wrong.Status == http.StatusOK { // one in a million: 000000 was the code
		return secret, nil
	}
	require.Equal(t, http.StatusBadRequest, wrong.Status, wrong.Raw)
	require.Equal(t, "bad_code", wrong.str("error", "code"))

	r = s.do("POST", "/me/mfa/confirm", tok, map[string]string{"code": codeAt(t, secret, time.Now())})
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	var codes []string
	for _, c := range r.Body["recoveryCodes"].([]any) {
		codes = append(codes, c.(string))
	}
	require.Len(t, codes, 10)
	return secret, codes
}

// signInWith signs in with the password and then the second factor; it
// returns the final answer.
func (s *service) signInWith(email string, factor map[string]string) response {
	s.t.Helper()
	r := s.do("POST", "/auth/login", "", map[string]string{"email": email, "password": adminPassword})
	require.Equal(s.t, http.StatusOK, r.Status, r.Raw)
	require.Equal(s.t, true, r.Body["mfaRequired"], r.Raw)
	require.Empty(s.t, r.str("token"), "no session before the second factor")
	factor["challenge"] = r.str("challenge")
	return s.do("POST", "/auth/mfa", "", factor)
}

// Two-factor sign-in, on both engines: enrolment by QR code, a real TOTP
// code, each code good once, recovery codes good once, wrong codes ending
// the challenge and counting against the account, and every step audited.
func TestTwoFactorSignIn(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		s := adminService(t, dsn, nil)
		f := s.found("Second Factor Clinic")
		email := "member@secondfactor.example"
		tok, memberID := s.join(f, email, "member")

		secret, recovery := s.enrol(tok)
		me := s.do("GET", "/me/mfa", tok, nil)
		require.Equal(t, true, me.Body["enabled"])
		require.EqualValues(t, 10, me.Body["recoveryCodesLeft"])
		require.Equal(t, http.StatusConflict, s.do("POST", "/me/mfa/enrol", tok, nil).Status, "a second authenticator needs the first turned off")

		// The next time step's code (apps and servers drift by one) signs in.
		next := codeAt(t, secret, time.Now().Add(30*time.Second))
		r := s.signInWith(email, map[string]string{"code": next})
		require.Equal(t, http.StatusOK, r.Status, r.Raw)
		require.NotEmpty(t, r.str("token"))
		require.Equal(t, http.StatusOK, s.do("GET", "/rooms", r.str("token"), nil).Status)

		// The same code again, or an earlier step's, is refused: a code
		// seen over a shoulder or in a proxy's log is spent.
		r = s.signInWith(email, map[string]string{"code": next})
		require.Equal(t, http.StatusUnauthorized, r.Status)
		require.Equal(t, "bad_code", r.str("error", "code"))
		r = s.signInWith(email, map[string]string{"code": codeAt(t, secret, time.Now())})
		require.Equal(t, http.StatusUnauthorized, r.Status)

		// A recovery code, typed loosely, works once.
		typed := " " + strings.ToUpper(recovery[3]) + " "
		r = s.signInWith(email, map[string]string{"recoveryCode": typed})
		require.Equal(t, http.StatusOK, r.Status, r.Raw)
		require.EqualValues(t, 2, r.Body["failedSignIns"], "the two refused codes are told")
		r = s.signInWith(email, map[string]string{"recoveryCode": recovery[3]})
		require.Equal(t, http.StatusUnauthorized, r.Status)
		require.EqualValues(t, 9, s.do("GET", "/me/mfa", tok, nil).Body["recoveryCodesLeft"])

		// A password reset link stands in for the password, not the code.
		link := s.do("POST", "/people/"+memberID+"/reset-link", f.ownerTok, nil)
		require.Equal(t, http.StatusCreated, link.Status, link.Raw)
		reset := s.do("POST", "/auth/reset", "", map[string]string{"token": tokenOf(t, link.str("link")), "password": adminPassword + "!"})
		require.Equal(t, http.StatusOK, reset.Status, reset.Raw)
		require.Equal(t, true, reset.Body["mfaRequired"])
		require.Empty(t, reset.str("token"))
		require.Equal(t, http.StatusUnauthorized, s.do("GET", "/me", tok, nil).Status, "the reset signed the old sessions out")
		ok := s.do("POST", "/auth/mfa", "", map[string]string{"challenge": reset.str("challenge"), "recoveryCode": recovery[5]})
		require.Equal(t, http.StatusOK, ok.Status, ok.Raw)
		tok = ok.str("token")
		require.Equal(t, http.StatusNoContent, s.do("POST", "/me/password", tok, map[string]string{"currentPassword": adminPassword + "!", "newPassword": adminPassword}).Status)

		// A challenge is not a session, and not reusable after it passed.
		login := s.do("POST", "/auth/login", "", map[string]string{"email": email, "password": adminPassword})
		require.Equal(t, http.StatusUnauthorized, s.do("GET", "/me", login.str("challenge"), nil).Status)
		ok = s.do("POST", "/auth/mfa", "", map[string]string{"challenge": login.str("challenge"), "recoveryCode": recovery[0]})
		require.Equal(t, http.StatusOK, ok.Status, ok.Raw)
		again := s.do("POST", "/auth/mfa", "", map[string]string{"challenge": login.str("challenge"), "recoveryCode": recovery[1]})
		require.Equal(t, "challenge_expired", again.str("error", "code"))
		require.Equal(t, http.StatusBadRequest, s.do("POST", "/auth/mfa", "", map[string]string{"challenge": "x"}).Status, "neither a code nor a recovery code")

		// Five wrong codes end a challenge; the right one after them is
		// refused too, and the account now waits like after wrong passwords.
		login = s.do("POST", "/auth/login", "", map[string]string{"email": email, "password": adminPassword})
		var last response
		for i := range 5 {
			last = s.do("POST", "/auth/mfa", "", map[string]string{"challenge": login.str("challenge"), "code": "12345" + string(rune('0'+i))})
			require.Equal(t, http.StatusUnauthorized, last.Status)
		}
		require.Equal(t, "challenge_expired", last.str("error", "code"))
		r = s.do("POST", "/auth/mfa", "", map[string]string{"challenge": login.str("challenge"), "code": codeAt(t, secret, time.Now().Add(60*time.Second))})
		require.Contains(t, []int{http.StatusUnauthorized, http.StatusTooManyRequests}, r.Status)
		require.Equal(t, http.StatusTooManyRequests, s.do("POST", "/auth/login", "", map[string]string{"email": email, "password": adminPassword}).Status)

		trail := s.do("GET", "/audit?action=auth.", f.ownerTok, nil)
		counts := map[string]int{}
		for _, row := range trail.Body["audit"].([]any) {
			counts[row.(map[string]any)["action"].(string)]++
		}
		require.Equal(t, 1, counts["auth.mfa_enabled"])
		require.Equal(t, 3, counts["auth.recovery_code_used"])
		require.Equal(t, 2+1+5, counts["auth.mfa_failed"], "each refused code and recovery code; not the code sent to an ended challenge")
	})
}

// A clinic that requires two-factor sign-in holds everyone without it to
// enrolling; nobody turns it off; an admin resets a lost authenticator, which
// signs the person out everywhere.
func TestClinicRequiresTwoFactorSignIn(t *testing.T) {
	testdb.Engines(t, func(t *testing.T, dsn string) {
		s := adminService(t, dsn, nil)
		f := s.found("Strict Clinic")
		email := "member@strict.example"
		memberTok, memberID := s.join(f, email, "member")
		adminTok, _ := s.join(f, "admin@strict.example", "admin")
		require.Equal(t, http.StatusForbidden, s.do("PUT", "/clinic/security", adminTok, map[string]bool{"requireMfa": true}).Status, "owners only")
		require.Equal(t, http.StatusBadRequest, s.do("PUT", "/clinic/security", f.ownerTok, map[string]string{}).Status)

		r := s.do("PUT", "/clinic/security", f.ownerTok, map[string]bool{"requireMfa": true})
		require.Equal(t, http.StatusOK, r.Status, r.Raw)
		require.Equal(t, true, r.Body["clinic"].(map[string]any)["requireMfa"])

		// Without a second factor, only enrolling (and oneself, and signing out) is open.
		for _, tok := range []string{f.ownerTok, memberTok} {
			held := s.do("GET", "/rooms", tok, nil)
			require.Equal(t, http.StatusForbidden, held.Status)
			require.Equal(t, "mfa_enrolment_required", held.str("error", "code"))
			me := s.do("GET", "/me", tok, nil)
			require.Equal(t, http.StatusOK, me.Status)
			require.Equal(t, true, me.Body["mfa"].(map[string]any)["enrolmentRequired"])
		}
		login := s.do("POST", "/auth/login", "", map[string]string{"email": email, "password": adminPassword})
		require.Equal(t, true, login.Body["mfaEnrolmentRequired"], login.Raw)

		ownerSecret, _ := s.enrol(f.ownerTok)
		require.NotEmpty(t, ownerSecret)
		require.Equal(t, http.StatusOK, s.do("GET", "/rooms", f.ownerTok, nil).Status, "enrolled: the session goes on")
		memberSecret, _ := s.enrol(memberTok)

		// Nobody turns off what the clinic requires.
		off := s.do("POST", "/me/mfa/disable", memberTok, map[string]string{"password": adminPassword, "code": codeAt(t, memberSecret, time.Now().Add(30*time.Second))})
		require.Equal(t, http.StatusConflict, off.Status, off.Raw)
		require.Equal(t, "mfa_required", off.str("error", "code"))

		// A lost phone: an admin resets it; the person is signed out
		// everywhere and enrols again at the next sign-in.
		require.Equal(t, http.StatusNoContent, s.do("POST", "/people/"+memberID+"/mfa-reset", f.ownerTok, nil).Status)
		require.Equal(t, http.StatusUnauthorized, s.do("GET", "/me", memberTok, nil).Status)
		require.Equal(t, http.StatusConflict, s.do("POST", "/people/"+memberID+"/mfa-reset", f.ownerTok, nil).Status, "nothing left to reset")
		login = s.do("POST", "/auth/login", "", map[string]string{"email": email, "password": adminPassword})
		require.Equal(t, http.StatusOK, login.Status, login.Raw)
		require.Equal(t, true, login.Body["mfaEnrolmentRequired"])
		memberTok = login.str("token")
		memberSecret, _ = s.enrol(memberTok)

		// Optional again: the person turns it off with password and code.
		require.Equal(t, http.StatusOK, s.do("PUT", "/clinic/security", f.ownerTok, map[string]bool{"requireMfa": false}).Status)
		off = s.do("POST", "/me/mfa/disable", memberTok, map[string]string{"password": "wrong password!", "code": codeAt(t, memberSecret, time.Now().Add(30*time.Second))})
		require.Equal(t, http.StatusBadRequest, off.Status)
		off = s.do("POST", "/me/mfa/disable", memberTok, map[string]string{"password": adminPassword, "code": codeAt(t, memberSecret, time.Now().Add(30*time.Second))})
		require.Equal(t, http.StatusOK, off.Status, off.Raw)
		login = s.do("POST", "/auth/login", "", map[string]string{"email": email, "password": adminPassword})
		require.NotEmpty(t, login.str("token"), "a password alone again")

		trail := s.do("GET", "/audit", f.ownerTok, nil)
		counts := map[string]int{}
		for _, row := range trail.Body["audit"].([]any) {
			counts[row.(map[string]any)["action"].(string)]++
		}
		require.Equal(t, 2, counts["clinic.mfa_requirement_changed"])
		require.Equal(t, 1, counts["user.mfa_reset"])
		require.Equal(t, 1, counts["auth.mfa_disabled"])
		require.Equal(t, 3, counts["auth.mfa_enabled"])
	})
}
