package main

import (
	"crypto/tls"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/handoff-telehealth/handoff/internal/testkit/testcert"

	"github.com/stretchr/testify/require"
)

// `handoff media` serves HTTPS itself given a certificate: a client that
// trusts the CA connects with TLS 1.2 or later; one that does not, or that
// speaks plain HTTP, gets nothing. A missing key is refused at start.
func TestMediaServesTLS(t *testing.T) {
	tc := testcert.New(t)
	certFile, keyFile, pool := tc.CertFile, tc.KeyFile, tc.Pool
	port := freePorts(t, 1)[0]
	cmd := exec.Command(binary, "media", "--listen", "127.0.0.1:"+strconv.Itoa(port), "--tls-cert", certFile, "--tls-key", keyFile,
		"--ice-udp-port", "0", "--ice-tcp-port", "0", "--internal-listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "HANDOFF_MEDIA_SECRET=tls-test-secret-0123456789abcdef", "HANDOFF_MEDIA_CONTROL_TOKEN=tls-test-control-token-0123456789ab")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	url := "https://127.0.0.1:" + strconv.Itoa(port) + "/readyz"
	trusting := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	var resp *http.Response
	require.Eventually(t, func() bool {
		r, err := trusting.Get(url)
		if err != nil {
			return false
		}
		resp = r
		return true
	}, 20*time.Second, 100*time.Millisecond, "the node answers over HTTPS")
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.GreaterOrEqual(t, resp.TLS.Version, uint16(tls.VersionTLS12))

	_, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
	require.Error(t, err, "a client that does not trust the CA is refused")
	plain, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://127.0.0.1:" + strconv.Itoa(port) + "/readyz")
	if err == nil {
		plain.Body.Close()
		require.NotEqual(t, http.StatusOK, plain.StatusCode, "plain HTTP is not served")
	}

	code, _, stderr := runHandoff(t, []string{"HANDOFF_MEDIA_SECRET=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "HANDOFF_MEDIA_CONTROL_TOKEN=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, "media", "--listen", "127.0.0.1:0", "--tls-cert", certFile)
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, "--tls-cert and --tls-key go together")
}
