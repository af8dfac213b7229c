package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/codec"
	"github.com/handoff-telehealth/handoff/config"
)

// secretSettings are the settings compose must take from .env.
var secretSettings = []string{"HANDOFF_MEDIA_SECRET", "HANDOFF_MEDIA_CONTROL_TOKEN", "HANDOFF_TURN_SECRET", "HANDOFF_CODEC_TOKEN", "HANDOFF_CODEC_KEYS", "HANDOFF_DATA_KEYS"}

// The compose file holds no secret of its own: each comes from .env and
// compose stops without it. deploy/make-secrets.sh writes that file, 0600,
// with secrets the production processes accept (and a codec key that
// parses), and never overwrites one.
func TestComposeSecretsComeFromAnEnvFile(t *testing.T) {
	c := readCompose(t)
	seen := map[string]bool{}
	for name, s := range c.Services {
		for key, v := range s.Environment {
			for _, secret := range secretSettings {
				if key == secret {
					require.Equal(t, "${"+secret+":?run sh deploy/make-secrets.sh to create .env}", v, "service %s", name)
					seen[secret] = true
				}
			}
		}
	}
	require.Len(t, seen, len(secretSettings), "every secret is used somewhere")

	env := filepath.Join(t.TempDir(), ".env")
	out, err := exec.Command("sh", "make-secrets.sh", env).CombinedOutput()
	require.NoError(t, err, string(out))
	info, err := os.Stat(env)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	raw, err := os.ReadFile(env)
	require.NoError(t, err)
	values := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, line)
		values[k] = v
	}
	for _, secret := range secretSettings {
		require.NotEmpty(t, values[secret], secret)
		if secret == "HANDOFF_CODEC_KEYS" || secret == "HANDOFF_DATA_KEYS" {
			_, err := codec.ParseKeys(values[secret])
			require.NoError(t, err)
			continue
		}
		require.NoError(t, config.CheckSecret(secret, values[secret]))
	}
	again, err := exec.Command("sh", "make-secrets.sh", env).CombinedOutput()
	require.Error(t, err, "an existing .env is kept: %s", again)
}

// Production processes refuse a placeholder or a short secret, naming it.
func TestPlaceholderSecretsAreRefused(t *testing.T) {
	require.ErrorContains(t, config.CheckSecret("--media-secret", "change-me-media-secret"), "placeholder")
	require.ErrorContains(t, config.CheckSecret("--media-secret", "short"), "shorter than 32 bytes")
	require.NoError(t, config.CheckSecret("--media-secret", strings.Repeat("7f", 32)))
	require.NoError(t, config.CheckSecret("--codec-token", ""), "empty: the feature is off")

	bin := filepath.Join(t.TempDir(), "handoff")
	out, err := exec.Command("go", "build", "-tags", "production", "-o", bin, "../cmd/handoff").CombinedOutput()
	require.NoError(t, err, string(out))
	cmd := exec.Command(bin, "media", "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "HANDOFF_MEDIA_SECRET=change-me-media-secret", "HANDOFF_MEDIA_CONTROL_TOKEN="+strings.Repeat("ab", 32))
	out, err = cmd.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "HANDOFF_MEDIA_SECRET")
	require.Contains(t, string(out), "placeholder")
}
