package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testCA makes a CA and a certificate it signed for 127.0.0.1, written as
// PEM files; it returns their paths and a pool trusting the CA.
func testCA(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Handoff test CA"}, IsCA: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return certFile, keyFile, pool
}

// `handoff media` serves HTTPS itself given a certificate: a client that
// trusts the CA connects with TLS 1.2 or later; one that does not, or that
// speaks plain HTTP, gets nothing. A missing key is refused at start.
func TestMediaServesTLS(t *testing.T) {
	certFile, keyFile, pool := testCA(t)
	port := freePorts(t, 1)[0]
	cmd := exec.Command(binary, "media", "--listen", "127.0.0.1:"+strconv.Itoa(port), "--tls-cert", certFile, "--tls-key", keyFile,
		"--ice-udp-port", "0", "--ice-tcp-port", "0")
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

	code, _, stderr := runHandoff(t, []string{"HANDOFF_MEDIA_SECRET=s", "HANDOFF_MEDIA_CONTROL_TOKEN=t"}, "media", "--listen", "127.0.0.1:0", "--tls-cert", certFile)
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, "--tls-cert and --tls-key go together")
}
