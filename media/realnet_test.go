package media_test

import (
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/internal/testkit/labnode"
	"github.com/handoff-telehealth/handoff/internal/testkit/mediatest"
	"github.com/handoff-telehealth/handoff/internal/testkit/netlab"
	"github.com/handoff-telehealth/handoff/media"
)

// TestLabNode is the media node or peer a network test runs in a namespace
// (this binary, run again); on its own it does nothing.
func TestLabNode(t *testing.T) {
	if !labnode.Main(t) {
		t.Skip("run by the network tests inside their namespaces")
	}
}

// The topologies below are built in the test with network namespaces, veth
// cables, a router namespace and iptables. Addresses: 198.18.x.0/24 are the
// "internet", 10.x.0.0/24 private networks behind NATs.

const (
	mediaPublic = "198.18.1.1"
	udpPort     = 7882
	tcpPort     = 7881
	callID      = "call-1"
)

func call(t testing.TB, lab *netlab.Lab, m *labnode.Media, doctorNS, patientNS string, doctorOpts, patientOpts mediatest.Options) (doctor, patient *labnode.Peer) {
	t.Helper()
	doctor = labnode.StartPeer(t, lab, doctorNS, labnode.PeerConfig{URL: m.URL, ID: "user:doctor", Call: callID, Tag: 'D', From: []byte{'P'}, Options: doctorOpts})
	patientOpts.Resume = true
	patient = labnode.StartPeer(t, lab, patientNS, labnode.PeerConfig{URL: m.URL, ID: "visit:patient", Call: callID, Tag: 'P', From: []byte{'D'}, Options: patientOpts, RestartOnDisconnect: true})
	return doctor, patient
}

// bothWays waits until each side receives the other's audio and video.
func bothWays(t testing.TB, doctor, patient *labnode.Peer) (labnode.Stats, labnode.Stats) {
	t.Helper()
	d, ok := doctor.Until(t, 20*time.Second, labnode.Hears(50, 'P'))
	require.True(t, ok, "the doctor should receive the patient's audio and video: %+v", d)
	p, ok := patient.Until(t, 20*time.Second, labnode.Hears(50, 'D'))
	require.True(t, ok, "the patient should receive the doctor's audio and video: %+v", p)
	return d, p
}

func members() []string { return []string{"user:doctor", "visit:patient"} }

// (a) The media node on the internet, the patient behind a NAT: direct.
func TestCallFromBehindANATConnectsDirectly(t *testing.T) {
	lab := netlab.New(t)
	mediaNS := lab.Host("media", "198.18.1")
	doctorNS := lab.Host("doctor", "198.18.2")
	patientNS := lab.HostBehindNAT("patient", "10.10.0")
	m := labnode.StartMedia(t, lab, mediaNS, mediaPublic, labnode.MediaConfig{Network: media.Network{UDPPort: udpPort}, Call: callID, Members: members()})
	doctor, patient := call(t, lab, m, doctorNS, patientNS, mediatest.Options{}, mediatest.Options{})
	_, p := bothWays(t, doctor, patient)
	require.Equal(t, "host/udp", p.Local, "no relay: the patient's own address, through its NAT")
}

// (b) The doctor on a network that drops all UDP: ICE over TCP.
func TestCallThroughAFirewallThatDropsUDPUsesICETCP(t *testing.T) {
	lab := netlab.New(t)
	mediaNS := lab.Host("media", "198.18.1")
	doctorNS := lab.Host("doctor", "198.18.2")
	lab.DropUDP(doctorNS)
	patientNS := lab.HostBehindNAT("patient", "10.10.0")
	m := labnode.StartMedia(t, lab, mediaNS, mediaPublic, labnode.MediaConfig{Network: media.Network{UDPPort: udpPort, TCPPort: tcpPort}, Call: callID, Members: members()})
	doctor, patient := call(t, lab, m, doctorNS, patientNS, mediatest.Options{TCP: true}, mediatest.Options{})
	d, _ := bothWays(t, doctor, patient)
	require.Equal(t, "host/tcp", d.Local, "the doctor's media goes over TCP")
}

// (c) The media node behind a 1:1 NAT (a cloud VM's private address), both
// participants behind NATs of their own: only the public-IP setting lets
// them reach it.
func TestMediaNodeBehind1to1NATNeedsItsPublicIP(t *testing.T) {
	const public = "198.18.9.1"
	for _, announce := range []bool{false, true} {
		name := map[bool]string{false: "without public IP", true: "with public IP"}[announce]
		t.Run(name, func(t *testing.T) {
			lab := netlab.New(t)
			mediaNS := lab.HostBehind1to1NAT("media", "10.20.0", public)
			doctorNS := lab.HostBehindNAT("doctor", "10.11.0")
			patientNS := lab.HostBehindNAT("patient", "10.10.0")
			netw := media.Network{UDPPort: udpPort}
			if announce {
				netw.PublicIPs = []string{public}
			}
			m := labnode.StartMedia(t, lab, mediaNS, public, labnode.MediaConfig{Network: netw, Call: callID, Members: members()})
			doctor, patient := call(t, lab, m, doctorNS, patientNS, mediatest.Options{}, mediatest.Options{})
			if announce {
				bothWays(t, doctor, patient)
				return
			}
			st, ok := patient.Until(t, 12*time.Second, labnode.Hears(1, 'D'))
			require.False(t, ok, "announcing only its private address, the node is unreachable: %+v", st)
			require.NotEqual(t, webrtc.ICEConnectionStateConnected.String(), st.State)
		})
	}
}

// (d) A patient whose network lets out only signaling and TURN: relayed
// media both ways through the media node's embedded TURN server, with
// credentials minted as the API mints them.
func TestCallWhoseOnlyWayOutIsTURNIsRelayed(t *testing.T) {
	lab := netlab.New(t)
	mediaNS := lab.Host("media", "198.18.1")
	doctorNS := lab.Host("doctor", "198.18.2")
	patientNS := lab.HostBehindNAT("patient", "10.10.0")
	lab.OnlyTo(patientNS, "tcp:"+mediaPublic+":8081", "udp:"+mediaPublic+":3478", "tcp:"+mediaPublic+":3478")
	m := labnode.StartMedia(t, lab, mediaNS, mediaPublic, labnode.MediaConfig{Network: media.Network{UDPPort: udpPort},
		TURN: media.TURN{Port: 3478, Secret: labnode.TURNSecret, RelayIP: mediaPublic}, Call: callID, Members: members()})
	servers := media.ICEServers{TURN: []string{"turn:" + mediaPublic + ":3478?transport=udp", "turn:" + mediaPublic + ":3478?transport=tcp"}, TURNSecret: labnode.TURNSecret}
	var ice []webrtc.ICEServer
	for _, s := range servers.For("visit:patient") {
		ice = append(ice, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	doctor, patient := call(t, lab, m, doctorNS, patientNS, mediatest.Options{}, mediatest.Options{ICEServers: ice})
	_, p := bothWays(t, doctor, patient)
	require.Equal(t, "relay/udp", p.Local, "the patient's media is relayed")

	// A credential from another secret is refused: no relay, no media.
	wrong := media.ICEServers{TURN: servers.TURN, TURNSecret: "not-the-secret"}.For("visit:intruder")
	intruder := labnode.StartPeer(t, lab, patientNS, labnode.PeerConfig{URL: m.URL, ID: "visit:intruder", Call: callID, Tag: 'I', From: []byte{'D'},
		Options: mediatest.Options{ICEServers: []webrtc.ICEServer{{URLs: wrong[0].URLs, Username: wrong[0].Username, Credential: wrong[0].Credential}}}})
	st, ok := intruder.Until(t, 6*time.Second, func(st labnode.Stats) bool { return st.Local != "" })
	require.False(t, ok, "a forged TURN credential gets no relay: %+v", st)
}

// The same TURN setting serves coturn: a real coturn with use-auth-secret
// and the secret the API mints credentials with relays a patient whose
// only way out is that TURN server.
func TestCallRelayedByCoturnWithTheSameCredentials(t *testing.T) {
	coturn, err := exec.LookPath("turnserver")
	require.NoError(t, err, "coturn is missing (apt-get install coturn; .ci/run installs it)")
	lab := netlab.New(t)
	mediaNS := lab.Host("media", "198.18.1")
	doctorNS := lab.Host("doctor", "198.18.2")
	turnNS := lab.Host("coturn", "198.18.4")
	patientNS := lab.HostBehindNAT("patient", "10.10.0")
	const turnIP, secret = "198.18.4.1", "coturn-shared-secret"
	lab.OnlyTo(patientNS, "tcp:"+mediaPublic+":8081", "udp:"+turnIP+":3478")
	ts := lab.Start(turnNS, nil, coturn, "-n", "--listening-ip="+turnIP, "--relay-ip="+turnIP, "--listening-port=3478",
		"--use-auth-secret", "--static-auth-secret="+secret, "--realm=handoff", "--no-tls", "--no-dtls", "--no-cli",
		"--log-file=stdout", "--simple-log", "--pidfile="+filepath.Join(t.TempDir(), "turnserver.pid"))
	ts.WaitLine(t, "", 10*time.Second) // it writes its log as it starts
	m := labnode.StartMedia(t, lab, mediaNS, mediaPublic, labnode.MediaConfig{Network: media.Network{UDPPort: udpPort}, Call: callID, Members: members()})
	var ice []webrtc.ICEServer
	for _, s := range (media.ICEServers{TURN: []string{"turn:" + turnIP + ":3478?transport=udp"}, TURNSecret: secret}).For("visit:patient") {
		ice = append(ice, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	doctor, patient := call(t, lab, m, doctorNS, patientNS, mediatest.Options{}, mediatest.Options{ICEServers: ice})
	_, p := bothWays(t, doctor, patient)
	require.Equal(t, "relay/udp", p.Local, "the patient's media is relayed by coturn")
}

// A patient whose address changes mid-call (a new network) is recovered by
// an ICE restart on the same signaling session: same session, same call.
func TestANetworkChangeMidCallIsRecoveredByICERestart(t *testing.T) {
	lab := netlab.New(t)
	mediaNS := lab.Host("media", "198.18.1")
	doctorNS := lab.Host("doctor", "198.18.2")
	patientNS := lab.Host("patient", "198.18.5")
	m := labnode.StartMedia(t, lab, mediaNS, mediaPublic, labnode.MediaConfig{Network: media.Network{UDPPort: udpPort}, Call: callID, Members: members()})
	doctor, patient := call(t, lab, m, doctorNS, patientNS, mediatest.Options{}, mediatest.Options{})
	d, _ := bothWays(t, doctor, patient)

	lab.In(patientNS, "ip", "addr", "flush", "dev", "eth0")
	lab.In(patientNS, "ip", "addr", "add", "198.18.5.7/24", "dev", "eth0")
	lab.In(patientNS, "ip", "route", "replace", "default", "via", "198.18.5.254")
	changed := time.Now()
	before := d.Received["P/audio"]
	time.Sleep(500 * time.Millisecond)
	d2, ok := doctor.Until(t, 30*time.Second, func(st labnode.Stats) bool { return st.Received["P/audio"] > before+100 })
	require.True(t, ok, "the patient's media comes back after the address change: %+v (the patient: %+v)", d2, patient.Latest(t, 5*time.Second))
	p, _ := patient.Until(t, 5*time.Second, func(st labnode.Stats) bool { return st.Restarts >= 1 })
	require.GreaterOrEqual(t, p.Restarts, 1, "by an ICE restart (new credentials on the same session)")
	require.Equal(t, int64(1), p.Resumes, "its signaling socket, which died with the old address, resumed the same session")
	t.Logf("media from the patient resumed %v after its address changed", time.Since(changed).Round(100*time.Millisecond))
}

// BenchmarkConnectTime measures, over 30 calls in each topology, the time
// from a peer's join to the first audio and the first video from the other
// side: direct UDP (patient behind NAT), ICE-TCP (a firewall that drops
// UDP) and TURN-relayed (a patient whose only way out is TURN).
//
//	go test -run '^$' -bench BenchmarkConnectTime -benchtime 1x ./media/
func BenchmarkConnectTime(b *testing.B) {
	calls := 30
	for _, topo := range []string{"direct", "ice-tcp", "turn"} {
		b.Run(topo, func(b *testing.B) {
			for range b.N {
				lab := netlab.New(b)
				mediaNS := lab.Host("media", "198.18.1")
				patientNS := lab.HostBehindNAT("patient", "10.10.0")
				doctorNS := lab.Host("doctor", "198.18.2")
				cfg := labnode.MediaConfig{Network: media.Network{UDPPort: udpPort, TCPPort: tcpPort}}
				var opts mediatest.Options
				switch topo {
				case "ice-tcp":
					lab.DropUDP(patientNS)
					opts.TCP = true
				case "turn":
					lab.OnlyTo(patientNS, "tcp:"+mediaPublic+":8081", "udp:"+mediaPublic+":3478", "tcp:"+mediaPublic+":3478")
					cfg.TURN = media.TURN{Port: 3478, Secret: labnode.TURNSecret, RelayIP: mediaPublic}
					s := media.ICEServers{TURN: []string{"turn:" + mediaPublic + ":3478?transport=udp"}, TURNSecret: labnode.TURNSecret}.For("visit:patient")[0]
					opts.ICEServers = []webrtc.ICEServer{{URLs: s.URLs, Username: s.Username, Credential: s.Credential}}
				}
				var ids []string
				for i := range calls {
					ids = append(ids, "user:doctor"+strconv.Itoa(i), "visit:patient"+strconv.Itoa(i))
				}
				cfg.Call, cfg.Members = callID, ids
				m := labnode.StartMedia(b, lab, mediaNS, mediaPublic, cfg)
				var audio, video, ice, dtls []float64
				for i := range calls {
					n := strconv.Itoa(i)
					d := labnode.StartPeer(b, lab, doctorNS, labnode.PeerConfig{URL: m.URL, ID: "user:doctor" + n, Call: callID, Tag: 'D', From: []byte{'P'}})
					p := labnode.StartPeer(b, lab, patientNS, labnode.PeerConfig{URL: m.URL, ID: "visit:patient" + n, Call: callID, Tag: 'P', From: []byte{'D'}, Options: opts})
					st, ok := p.Until(b, 20*time.Second, func(st labnode.Stats) bool { return st.FirstAudio["D"] > 0 && st.FirstVideo["D"] > 0 })
					if !ok {
						b.Fatalf("%s call %d did not connect: %+v", topo, i, st)
					}
					audio, video = append(audio, st.FirstAudio["D"]), append(video, st.FirstVideo["D"])
					ice, dtls = append(ice, st.ICEMs), append(dtls, st.ConnectedMs)
					p.Stop()
					d.Stop()
				}
				for _, v := range [][]float64{audio, video, ice, dtls} {
					sort.Float64s(v)
				}
				pct := func(v []float64, q float64) float64 { return v[min(len(v)-1, int(q*float64(len(v))))] }
				b.ReportMetric(pct(ice, 0.5), "ice-p50-ms")
				b.ReportMetric(pct(dtls, 0.5), "dtls-p50-ms")
				b.ReportMetric(pct(audio, 0.5), "audio-p50-ms")
				b.ReportMetric(pct(audio, 0.99), "audio-p99-ms")
				b.ReportMetric(pct(video, 0.5), "video-p50-ms")
				b.ReportMetric(pct(video, 0.99), "video-p99-ms")
			}
		})
	}
}
