package media

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"time"
)

// Claims are what a media token allows: Subject (a participant id) may open
// a signaling session (Call empty), or join Call. Key names the secret that
// signed it; Issued and Expires bound its life.
type Claims struct {
	Subject string `json:"sub"`
	Call    string `json:"call,omitempty"`
	Key     string `json:"kid,omitempty"`
	Issued  int64  `json:"iat,omitempty"`
	Expires int64  `json:"exp"`
}

// MaxTokenLifetime bounds every media token, whoever minted it: a token is
// for connecting now, not a credential to keep.
const MaxTokenLifetime = 15 * time.Minute

// tokenKey is one signing secret and its id.
type tokenKey struct {
	id     string
	secret []byte
}

// Tokens mints and checks short-lived media tokens signed with a secret
// shared by the API and the media node (HMAC-SHA256). Several secrets,
// "id:secret,id:secret", let it rotate: the first signs, all verify.
type Tokens struct{ keys []tokenKey }

var keyedSecret = regexp.MustCompile(`^[A-Za-z0-9_-]{1,16}:`)

// NewTokens makes a signer from the media secret setting: one secret, or
// "id:secret,id:secret" with the signing one first.
func NewTokens(secrets string) Tokens {
	var t Tokens
	for _, part := range SecretParts(secrets) {
		id, secret := "", part
		if keyedSecret.MatchString(part) {
			id, secret, _ = strings.Cut(part, ":")
		}
		t.keys = append(t.keys, tokenKey{id: id, secret: []byte(secret)})
	}
	if len(t.keys) == 0 {
		t.keys = []tokenKey{{}}
	}
	return t
}

// SecretParts splits the media secret setting into its secrets, each with
// its id (for checking them one by one).
func SecretParts(secrets string) []string {
	if !keyedSecret.MatchString(secrets) {
		return []string{secrets} // one secret, whatever it holds
	}
	return strings.Split(secrets, ",")
}

// SecretValues are the secrets of the media secret setting, without their
// ids (for checking each).
func SecretValues(secrets string) []string {
	var out []string
	for _, k := range NewTokens(secrets).keys {
		out = append(out, string(k.secret))
	}
	return out
}

// Mint signs claims valid for ttl (at most MaxTokenLifetime).
func (t Tokens) Mint(subject, call string, ttl time.Duration) string {
	now := time.Now()
	k := t.keys[0]
	body, _ := json.Marshal(Claims{Subject: subject, Call: call, Key: k.id, Issued: now.Unix(), Expires: now.Add(min(ttl, MaxTokenLifetime)).Unix()})
	payload := base64.RawURLEncoding.EncodeToString(body)
	return payload + "." + sign(k.secret, payload)
}

func sign(secret []byte, payload string) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

var (
	errBadToken     = errors.New("media token is malformed or its signature is wrong")
	errExpiredToken = errors.New("media token has expired")
	errLongToken    = errors.New("media token lives longer than any media token may")
)

// Verify checks the signature (with the key the token names), the expiry
// and the lifetime, and returns the claims.
func (t Tokens) Verify(token string) (Claims, error) {
	payload, sig, ok := strings.Cut(token, ".")
	if !ok {
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
	var key *tokenKey
	for i := range t.keys {
		if t.keys[i].id == c.Key {
			key = &t.keys[i]
			break
		}
	}
	if key == nil || !hmac.Equal([]byte(sig), []byte(sign(key.secret, payload))) {
		return Claims{}, errBadToken
	}
	now := time.Now().Unix()
	if now > c.Expires {
		return Claims{}, errExpiredToken
	}
	if c.Expires-now > int64(MaxTokenLifetime/time.Second) || (c.Issued > 0 && c.Expires-c.Issued > int64(MaxTokenLifetime/time.Second)) {
		return Claims{}, errLongToken
	}
	return c, nil
}
