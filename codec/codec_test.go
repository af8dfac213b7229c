package codec_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/handoff-telehealth/handoff/codec"
)

func newCodec(t *testing.T, spec string) *codec.Codec {
	c, err := codec.ParseKeys(spec)
	require.NoError(t, err)
	return c
}

func key(t *testing.T, id string) string {
	s, err := codec.NewKeySpec(id)
	require.NoError(t, err)
	return s
}

func TestCodecSealsAndOpens(t *testing.T) {
	c := newCodec(t, key(t, "k1"))
	p, err := c.DataConverter().ToPayload(map[string]string{"patientName": "Ada Lovelace"})
	require.NoError(t, err)
	require.NotContains(t, string(p.GetData()), "Ada")
	require.Equal(t, "k1", string(p.GetMetadata()["encryption-key-id"]))
	var back map[string]string
	require.NoError(t, c.DataConverter().FromPayload(p, &back))
	require.Equal(t, "Ada Lovelace", back["patientName"])
}

func TestKeysRotate(t *testing.T) {
	old, fresh := key(t, "old"), key(t, "new")
	before := newCodec(t, old)
	sealed, err := before.DataConverter().ToPayload("visit data")
	require.NoError(t, err)

	after := newCodec(t, fresh+","+old)
	var s string
	require.NoError(t, after.DataConverter().FromPayload(sealed, &s), "old payloads still open after rotation")
	require.Equal(t, "visit data", s)
	resealed, err := after.DataConverter().ToPayload("visit data")
	require.NoError(t, err)
	require.Equal(t, "new", string(resealed.GetMetadata()["encryption-key-id"]))

	require.Error(t, newCodec(t, fresh).DataConverter().FromPayload(sealed, &s), "a dropped key no longer opens its payloads")
}

func TestBadKeySpecs(t *testing.T) {
	for spec, want := range map[string]string{
		"":                             "no codec key",
		"nokey":                        "id:base64",
		"k1:not-base64!":               "32 bytes",
		"k1:" + strings.Repeat("A", 8): "32 bytes",
	} {
		_, err := codec.ParseKeys(spec)
		require.ErrorContains(t, err, want, spec)
	}
	k := key(t, "k1")
	_, err := codec.ParseKeys(k + "," + k)
	require.ErrorContains(t, err, "twice")
}

func TestCodecServerNeedsTheToken(t *testing.T) {
	c := newCodec(t, key(t, "k1"))
	srv := httptest.NewServer(http.StripPrefix("/codec", c.CodecServer("s3cret", []string{"http://127.0.0.1:8233"}, nil)))
	defer srv.Close()
	sealed, err := c.Encode([]*commonpb.Payload{mustPayload(t, "Grace Hopper")})
	require.NoError(t, err)
	body, err := json.Marshal(map[string]any{"payloads": []any{jsonPayload(t, sealed[0])}})
	require.NoError(t, err)

	post := func(token string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/codec/decode", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.String()
	}
	code, out := post("")
	require.Equal(t, http.StatusUnauthorized, code)
	require.NotContains(t, out, "Grace")
	code, _ = post("wrong")
	require.Equal(t, http.StatusUnauthorized, code)
	code, out = post("s3cret")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, out, base64.StdEncoding.EncodeToString([]byte(`"Grace Hopper"`)), "the decoded payload comes back")

	// An operator unlocks one browser: the cookie then stands for the token.
	resp0, err := http.Get(srv.URL + "/codec/unlock?token=wrong")
	require.NoError(t, err)
	resp0.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp0.StatusCode)
	resp0, err = http.Get(srv.URL + "/codec/unlock?token=s3cret")
	require.NoError(t, err)
	resp0.Body.Close()
	require.Equal(t, http.StatusOK, resp0.StatusCode)
	cookies := resp0.Cookies()
	require.Len(t, cookies, 1)
	require.True(t, cookies[0].HttpOnly)
	require.False(t, cookies[0].Secure, "plain HTTP (a dev laptop): a Secure cookie would never come back")
	tlsSrv := httptest.NewTLSServer(http.StripPrefix("/codec", c.CodecServer("s3cret", nil, nil)))
	defer tlsSrv.Close()
	resp2, err := tlsSrv.Client().Get(tlsSrv.URL + "/codec/unlock?token=s3cret")
	require.NoError(t, err)
	resp2.Body.Close()
	require.True(t, resp2.Cookies()[0].Secure, "over HTTPS the cookie is Secure")
	withCookie, _ := http.NewRequest(http.MethodPost, srv.URL+"/codec/decode", bytes.NewReader(body))
	withCookie.Header.Set("Content-Type", "application/json")
	withCookie.AddCookie(cookies[0])
	resp1, err := http.DefaultClient.Do(withCookie)
	require.NoError(t, err)
	resp1.Body.Close()
	require.Equal(t, http.StatusOK, resp1.StatusCode)

	req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/codec/decode", nil)
	req.Header.Set("Origin", "http://127.0.0.1:8233")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "http://127.0.0.1:8233", resp.Header.Get("Access-Control-Allow-Origin"))
	req.Header.Set("Origin", "http://evil.example")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
}

func mustPayload(t *testing.T, v any) *commonpb.Payload {
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	require.NoError(t, err)
	return p
}

// jsonPayload renders a payload the way the codec-server protocol carries it.
func jsonPayload(t *testing.T, p *commonpb.Payload) map[string]any {
	meta := map[string][]byte{}
	for k, v := range p.GetMetadata() {
		meta[k] = v
	}
	return map[string]any{"metadata": meta, "data": p.GetData()}
}
