// Package mfa is the second factor of a provider's sign-in: time-based
// one-time passwords (TOTP, RFC 6238, as every authenticator app makes
// them) and single-use recovery codes. Codes are made and checked by
// github.com/pquerna/otp; this package adds what a sign-in needs around
// it: which time step a code was for, so that a code is taken once, and
// recovery codes kept only as hashes.
package mfa

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// Issuer is how authenticator apps label Handoff's entries.
const Issuer = "Handoff"

// Period is the TOTP time step; Skew how many steps either side of now a
// code is still taken in (clocks drift, people type slowly).
const (
	Period = 30 * time.Second
	Skew   = 1
)

// RecoveryCodes is how many recovery codes a person is given at a time.
const RecoveryCodes = 10

var opts = totp.ValidateOpts{Period: uint(Period / time.Second), Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// Enrolment is a new authenticator secret as a person adds it to an app:
// by QR code (a PNG data URL) or by typing the secret.
type Enrolment struct {
	Secret string `json:"secret"`
	URL    string `json:"otpauthUrl"`
	QRCode string `json:"qrCode"`
}

// NewEnrolment makes a random secret for account (the person's email).
func NewEnrolment(account string) (Enrolment, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: Issuer, AccountName: account,
		Period: opts.Period, Digits: opts.Digits, Algorithm: opts.Algorithm})
	if err != nil {
		return Enrolment{}, err
	}
	img, err := key.Image(240, 240)
	if err != nil {
		return Enrolment{}, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return Enrolment{}, err
	}
	return Enrolment{Secret: key.Secret(), URL: key.URL(),
		QRCode: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())}, nil
}

// Check says whether code is secret's code at now (within Skew steps), and
// for which time step, so that the caller can refuse a step already used.
func Check(secret, code string, now time.Time) (step int64, ok bool) {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if len(code) != int(opts.Digits) {
		return 0, false
	}
	for d := -Skew; d <= Skew; d++ {
		at := now.Add(time.Duration(d) * Period)
		want, err := totp.GenerateCodeCustom(secret, at, opts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return at.Unix() / int64(opts.Period), true
		}
	}
	return 0, false
}

// NewRecoveryCodes makes a set of recovery codes, as shown to the person
// (xxxxx-xxxxx), and the hashes kept of them.
func NewRecoveryCodes() (codes, hashes []string) {
	const alphabet = "abcdefghjkmnpqrstuvwxyz23456789" // nothing to misread
	for range RecoveryCodes {
		b := make([]byte, 10)
		_, _ = rand.Read(b)
		var s strings.Builder
		for i, c := range b {
			if i == 5 {
				s.WriteByte('-')
			}
			s.WriteByte(alphabet[int(c)%len(alphabet)])
		}
		codes = append(codes, s.String())
		hashes = append(hashes, HashRecoveryCode(s.String()))
	}
	return codes, hashes
}

// HashRecoveryCode is the hash kept of a recovery code, as typed: case,
// spaces and dashes do not matter.
func HashRecoveryCode(code string) string {
	norm := strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(strings.TrimSpace(code)))
	sum := sha256.Sum256([]byte(norm))
	return hex.EncodeToString(sum[:])
}
