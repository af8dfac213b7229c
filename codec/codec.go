// Package codec is Handoff's Temporal payload codec: AES-256-GCM encryption
// of every payload and failure a process sends to Temporal, with key
// rotation, and the HTTP codec server that lets the Temporal UI show decoded
// payloads to an operator who holds the token.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// codecCookie carries the codec token for the Temporal UI's requests.
const codecCookie = "handoff_codec"

const (
	metadataEncoding  = "encoding"
	metadataKeyID     = "encryption-key-id"
	encodingEncrypted = "binary/encrypted"
	keySize           = 32 // AES-256
)

// Codec encrypts every payload with AES-256-GCM before it leaves the process,
// so patient data is never stored in Temporal in plaintext. Each payload
// names the key that sealed it: keys rotate by putting a new key first and
// keeping the old ones for decoding.
type Codec struct {
	activeID string
	aeads    map[string]cipher.AEAD
}

// ParseKeys reads "id:base64key[,id:base64key…]"; the first key encrypts,
// all of them decrypt. Keys are 32 random bytes, base64 (std) encoded.
func ParseKeys(spec string) (*Codec, error) {
	c := &Codec{aeads: map[string]cipher.AEAD{}}
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, b64, ok := strings.Cut(part, ":")
		if !ok || id == "" {
			return nil, errors.New("codec keys: each key is id:base64, e.g. k1:" + strings.Repeat("A", 43) + "=")
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(raw) != keySize {
			return nil, fmt.Errorf("codec key %q: want %d bytes in base64", id, keySize)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		if _, dup := c.aeads[id]; dup {
			return nil, fmt.Errorf("codec key %q given twice", id)
		}
		c.aeads[id] = aead
		if c.activeID == "" {
			c.activeID = id
		}
	}
	if c.activeID == "" {
		return nil, errors.New("no codec key configured: set --codec-keys or HANDOFF_CODEC_KEYS (id:base64 of 32 random bytes)")
	}
	return c, nil
}

// NewKeySpec makes a fresh key spec with one random key.
func NewKeySpec(id string) (string, error) {
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return id + ":" + base64.StdEncoding.EncodeToString(key), nil
}

// Encode implements converter.PayloadCodec.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	aead := c.aeads[c.activeID]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, err
		}
		nonce := make([]byte, aead.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{metadataEncoding: []byte(encodingEncrypted), metadataKeyID: []byte(c.activeID)},
			Data:     aead.Seal(nonce, nonce, plain, []byte(c.activeID)),
		}
	}
	return out, nil
}

// Decode implements converter.PayloadCodec; payloads that are not encrypted
// pass through unchanged.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[metadataEncoding]) != encodingEncrypted {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[metadataKeyID])
		aead, ok := c.aeads[id]
		if !ok {
			return nil, fmt.Errorf("payload sealed with codec key %q, which is not configured", id)
		}
		if len(p.GetData()) < aead.NonceSize() {
			return nil, errors.New("encrypted payload too short")
		}
		nonce, sealed := p.GetData()[:aead.NonceSize()], p.GetData()[aead.NonceSize():]
		plain, err := aead.Open(nil, nonce, sealed, []byte(id))
		if err != nil {
			return nil, fmt.Errorf("decrypting payload with key %q: %w", id, err)
		}
		var decoded commonpb.Payload
		if err := proto.Unmarshal(plain, &decoded); err != nil {
			return nil, err
		}
		out[i] = &decoded
	}
	return out, nil
}

// DataConverter encrypts payloads with c.
func (c *Codec) DataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// FailureConverter encodes failure messages and stack traces too: they may
// quote patient data.
func (c *Codec) FailureConverter() converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter: c.DataConverter(), EncodeCommonAttributes: true,
	})
}

// Decoded is told of each decode the codec server did: the request (its
// client address, its namespace header) and the plain payloads, so that
// who read which visit's data can be audited.
type Decoded func(r *http.Request, payloads []*commonpb.Payload)

// observed is the codec with each decode reported.
type observed struct {
	*Codec
	r      *http.Request
	report Decoded
}

func (o observed) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out, err := o.Codec.Decode(payloads)
	if err == nil && o.report != nil {
		o.report(o.r, out)
	}
	return out, err
}

// CodecServer lets the Temporal UI show decoded payloads to an operator who
// holds the token; everyone else keeps seeing ciphertext. origins are the UI
// addresses allowed to call it from a browser; report (may be nil) is told
// of every decode.
func (c *Codec) CodecServer(token string, origins []string, report Decoded) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && slices.Contains(origins, origin) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Allow-Credentials", "true")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace")
			w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			w.Header().Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		valid := func(got string) bool {
			return token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
		}
		// An operator unlocks decoding for one browser by opening
		// /codec/unlock?token=…: the token moves into an HttpOnly cookie that
		// the Temporal UI sends with its codec requests.
		if r.URL.Path == "/unlock" {
			if !valid(r.URL.Query().Get("token")) {
				http.Error(w, "wrong codec token", http.StatusUnauthorized)
				return
			}
			// Secure over HTTPS: the cookie then never travels in clear.
			http.SetCookie(w, &http.Cookie{Name: codecCookie, Value: token, Path: "/codec", HttpOnly: true, Secure: r.TLS != nil,
				SameSite: http.SameSiteLaxMode, MaxAge: 8 * 3600})
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("Payload decoding is unlocked for this browser for 8 hours. Reload the Temporal UI.\n"))
			return
		}
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if c, err := r.Cookie(codecCookie); err == nil && got == "" {
			got = c.Value
		}
		if !valid(got) {
			http.Error(w, `{"error":{"code":"unauthorized","message":"codec token required"}}`, http.StatusUnauthorized)
			return
		}
		converter.NewPayloadCodecHTTPHandler(observed{Codec: c, r: r, report: report}).ServeHTTP(w, r)
	})
}

var _ converter.PayloadCodec = (*Codec)(nil)

// sealedPrefix starts a value sealed by SealString: "hx1:<key id>:<base64
// of nonce and ciphertext>". The key id travels with each value, so a value
// sealed before a rotation still opens after it.
const sealedPrefix = "hx1:"

// SealString encrypts one value (a database column) with the active key.
// The key id is authenticated with it, so a value cannot be made to claim
// another key.
func (c *Codec) SealString(plain string) (string, error) {
	aead := c.aeads[c.activeID]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := aead.Seal(nonce, nonce, []byte(plain), []byte(c.activeID))
	return sealedPrefix + c.activeID + ":" + base64.RawStdEncoding.EncodeToString(sealed), nil
}

// OpenString decrypts a value SealString made. A value without the sealed
// prefix is returned as it is: it was written before encryption at rest,
// and the re-encryption command seals it.
func (c *Codec) OpenString(value string) (string, error) {
	id, ok := SealedKeyID(value)
	if !ok {
		return value, nil
	}
	aead, known := c.aeads[id]
	if !known {
		return "", fmt.Errorf("value sealed with key %q, which is not configured", id)
	}
	raw, err := base64.RawStdEncoding.DecodeString(value[len(sealedPrefix)+len(id)+1:])
	if err != nil || len(raw) < aead.NonceSize() {
		return "", errors.New("sealed value is damaged")
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(id))
	if err != nil {
		return "", fmt.Errorf("opening a value sealed with key %q: %w", id, err)
	}
	return string(plain), nil
}

// ActiveKeyID is the id of the key that seals.
func (c *Codec) ActiveKeyID() string { return c.activeID }

// SealedKeyID says which key sealed value, and whether it is sealed at all.
func SealedKeyID(value string) (string, bool) {
	rest, ok := strings.CutPrefix(value, sealedPrefix)
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, ":")
	return id, ok && id != ""
}
