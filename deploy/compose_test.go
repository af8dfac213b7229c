// Package deploy checks what can be checked of the deployment files on a
// machine without a Docker engine: the compose file parses, names every
// service, publishes the ports the README gives, and passes Handoff only
// settings its commands know.
package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

type composeFile struct {
	Services map[string]struct {
		Image       string         `yaml:"image"`
		Build       any            `yaml:"build"`
		Command     []string       `yaml:"command"`
		Environment map[string]any `yaml:"environment"`
		Ports       []string       `yaml:"ports"`
		DependsOn   any            `yaml:"depends_on"`
	} `yaml:"services"`
}

func readCompose(t *testing.T) composeFile {
	raw, err := os.ReadFile("../docker-compose.yml")
	require.NoError(t, err)
	var c composeFile
	require.NoError(t, yaml.Unmarshal(raw, &c), "docker-compose.yml parses")
	return c
}

func TestComposeHasTheWholeTopology(t *testing.T) {
	c := readCompose(t)
	for _, name := range []string{"postgres", "temporal", "temporal-ui", "temporal-setup", "migrate", "api", "worker", "media", "media-2"} {
		require.Contains(t, c.Services, name)
	}
	require.Contains(t, c.Services["temporal"].Environment["DB"], "postgres", "Temporal persists to PostgreSQL")
	for _, name := range []string{"api", "worker", "media", "media-2", "migrate", "temporal-setup"} {
		require.NotNil(t, c.Services[name].Build, "%s is built from the Dockerfile", name)
	}
}

func TestComposePublishesTheREADMEPorts(t *testing.T) {
	c := readCompose(t)
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	// The README's table of the real-cluster topology: | service | host port | …
	row := regexp.MustCompile(`(?m)^\|\s*` + "`" + `([a-z0-9-]+)` + "`" + `\s*\|\s*(\d+)\s*\|`)
	readmePorts := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		readmePorts[m[1]] = m[2]
	}
	require.NotEmpty(t, readmePorts, "README has the ports table")
	published := map[string]string{}
	all := map[string][]string{}
	for name, s := range c.Services {
		for _, p := range s.Ports {
			if _, seen := published[name]; !seen {
				published[name] = strings.Split(p, ":")[0] // the service's first port is its row
			}
			all[name] = append(all[name], p)
		}
	}
	require.Equal(t, readmePorts, published)
	// Media needs more than signaling: its ICE ports and TURN, UDP and TCP.
	for _, p := range []string{"7882:7882/udp", "7881:7881/tcp", "3478:3478/udp", "3478:3478/tcp"} {
		require.Contains(t, all["media"], p, "the media node publishes %s", p)
	}
	for _, p := range []string{"7892:7892/udp", "7891:7891/tcp", "3479:3479/udp", "3479:3479/tcp"} {
		require.Contains(t, all["media-2"], p, "the second media node publishes %s", p)
	}
}

func TestComposeGivesHandoffOnlySettingsItKnows(t *testing.T) {
	c := readCompose(t)
	bin := filepath.Join(t.TempDir(), "handoff")
	out, err := exec.Command("go", "build", "-tags", "production", "-o", bin, "../cmd/handoff").CombinedOutput()
	require.NoError(t, err, string(out))
	for name, s := range c.Services {
		if s.Build == nil {
			continue
		}
		require.Len(t, s.Command, 1, name)
		help, err := exec.Command(bin, s.Command[0], "--help").CombinedOutput()
		require.NoError(t, err, "%s: %s", name, help)
		for key := range s.Environment {
			if strings.HasPrefix(key, "HANDOFF_") {
				require.Contains(t, string(help), key, "service %s sets %s, which `handoff %s` does not read", name, key, s.Command[0])
			}
		}
	}
}

func TestDockerfileBuildsTheProductionBinary(t *testing.T) {
	raw, err := os.ReadFile("../Dockerfile")
	require.NoError(t, err)
	require.Contains(t, string(raw), "-tags production")
	bin := filepath.Join(t.TempDir(), "handoff")
	// The Dockerfile's build line, run here: static, no cgo, no dev server.
	cmd := exec.Command("go", "build", "-tags", "production", "-trimpath", "-o", bin, "../cmd/handoff")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	help, err := exec.Command(bin, "dev").CombinedOutput()
	require.Error(t, err, "the production binary has no dev server")
	require.Contains(t, string(help), "no embedded Temporal server")
}

// The Grafana dashboard parses and charts only metrics Handoff exports.
func TestGrafanaDashboardUsesRealMetrics(t *testing.T) {
	raw, err := os.ReadFile("grafana/handoff-dashboard.json")
	require.NoError(t, err)
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(raw, &dash))
	require.NotEmpty(t, dash.Panels)
	// Every metric Handoff defines, read from its sources.
	var sources strings.Builder
	for _, f := range []string{"../metrics/metrics.go", "../media/metrics.go"} {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		sources.Write(b)
	}
	name := regexp.MustCompile(`handoff_[a-z_]+`)
	for _, p := range dash.Panels {
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(m, "_bucket")
				require.Contains(t, sources.String(), `"`+base+`"`, "panel %q charts %s, which Handoff does not export", p.Title, m)
			}
		}
	}
}

// Every media node registers itself under its own id, at the signaling port
// it publishes and the control URL of its own service name; api and worker
// place calls from the registry.
func TestComposeMediaNodesRegisterThemselves(t *testing.T) {
	c := readCompose(t)
	ids := map[string]bool{}
	nodes := 0
	for name, s := range c.Services {
		if len(s.Command) != 1 || s.Command[0] != "media" {
			continue
		}
		nodes++
		env := func(k string) string { v, _ := s.Environment[k].(string); return v }
		id := env("HANDOFF_NODE_ID")
		require.NotEmpty(t, id, name)
		require.False(t, ids[id], "%s: node id %s used twice", name, id)
		ids[id] = true
		require.NotEmpty(t, env("HANDOFF_DB"), "%s registers in the app database", name)
		require.Equal(t, "http://"+name+":8083", env("HANDOFF_CONTROL_URL"), name)
		_, listenPort, _ := strings.Cut(env("HANDOFF_LISTEN"), ":")
		require.Contains(t, env("HANDOFF_PUBLIC_URL"), ":"+listenPort+"/ws", "%s: pages reach the port it listens on", name)
		require.Contains(t, s.Ports, listenPort+":"+listenPort, "%s publishes its signaling port", name)
	}
	require.GreaterOrEqual(t, nodes, 2, "more than one media node")
	for _, name := range []string{"api", "worker"} {
		require.Equal(t, "true", c.Services[name].Environment["HANDOFF_MEDIA_REGISTRY"], "%s places calls from the registry", name)
	}
}
