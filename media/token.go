package media

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Claims are what a media token allows: Subject (a participant id) may open
// a signaling session (Call empty), or join Call.
type Claims struct {
	Subject string `json:"sub"`
	Call    string `json:"call,omitempty"`
	Expires int64  `json:"exp"`
}

// Tokens mints and checks short-lived media tokens signed with a shared
// secret (HMAC-SHA256).
type Tokens struct{ secret []byte }

// NewTokens makes a signer; the secret must be shared by the API and media.
func NewTokens(secret string) Tokens { return Tokens{secret: []byte(secret)} }

// Mint signs claims valid for ttl.
func (t Tokens) Mint(subject, call string, ttl time.Duration) string {
	body, _ := json.Marshal(Claims{Subject: subject, Call: call, Expires: time.Now().Add(ttl).Unix()})
	payload := base64.RawURLEncoding.EncodeToString(body)
	return payload + "." + t.sign(payload)
}

func (t Tokens) sign(payload string) string {
	mac := hmac.New(sha256.New, t.secret)
	mac.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

var (
	errBadToken     = errors.New("media token is malformed or its signature is wrong")
	errExpiredToken = errors.New("media token has expired")
)

// Verify checks the signature and expiry and returns the claims.
func (t Tokens) Verify(token string) (Claims, error) {
	payload, sig, ok := strings.Cut(token, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(t.sign(payload))) {
		return Claims{}, errBadToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return Claims{}, errBadToken
	}
	var c Claims
	if err := json.Unmarshal(raw, &c); err != nil || c.Subject == "" {
		return Claims{}, errBadToken
	}
	if time.Now().Unix() > c.Expires {
		return Claims{}, errExpiredToken
	}
	return c, nil
}
