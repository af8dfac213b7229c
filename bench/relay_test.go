package bench_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/handoff-telehealth/handoff/bench"
	"github.com/handoff-telehealth/handoff/internal/testkit/labnode"
	"github.com/handoff-telehealth/handoff/internal/testkit/mediatest"
	"github.com/handoff-telehealth/handoff/internal/testkit/netlab"
	"github.com/handoff-telehealth/handoff/media"
)

// TestLabNode is the media node or peer BenchmarkTURNRelayCost runs in a
// namespace (this binary, run again); on its own it does nothing.
func TestLabNode(t *testing.T) {
	if !labnode.Main(t) {
		t.Skip("run by the relay benchmark inside its namespaces")
	}
}

// BenchmarkTURNRelayCost carries the same calls through one media node
// twice: with every patient direct, and with every patient relayed by the
// node's embedded TURN server (their network lets out only TURN). The
// figure is packets delivered per CPU-second of the node's process
// (SFU + TURN); the direct run is the floor, so the ratio is what relaying
// costs.
//
//	go test -run '^$' -bench BenchmarkTURNRelayCost -benchtime 1x -v ./bench/
func BenchmarkTURNRelayCost(b *testing.B) {
	calls, window := 3, 15*time.Second
	if benchShort() {
		calls, window = 2, 5*time.Second
	}
	rate := map[string]float64{}
	for _, mode := range []string{"direct", "turn"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				rate[mode] = relayRun(b, mode, calls, window)
				b.ReportMetric(rate[mode], "packets/cpu-s")
			}
		})
	}
	if rate["direct"] > 0 && rate["turn"] > 0 {
		b.Logf("TURN relay: %.0f packets per CPU-second against %.0f direct (×%.2f)", rate["turn"], rate["direct"], rate["turn"]/rate["direct"])
	}
}

func relayRun(b *testing.B, mode string, calls int, window time.Duration) float64 {
	const public = "198.18.1.1"
	lab := netlab.New(b)
	mediaNS := lab.Host("media", "198.18.1")
	doctorNS := lab.Host("doctor", "198.18.2")
	patientNS := lab.HostBehindNAT("patient", "10.10.0")
	cfg := labnode.MediaConfig{Network: media.Network{UDPPort: 7882}, Call: "call"}
	// About 0.8 Mbps of video and 50 audio packets a second from everyone.
	load := mediatest.Options{VideoPacketsPerTick: 2, VideoPayloadBytes: 1000}
	patientOpts := load
	if mode == "turn" {
		lab.OnlyTo(patientNS, "tcp:"+public+":8081", "udp:"+public+":3478")
		cfg.TURN = media.TURN{Port: 3478, Secret: labnode.TURNSecret, RelayIP: public}
		s := media.ICEServers{TURN: []string{"turn:" + public + ":3478?transport=udp"}, TURNSecret: labnode.TURNSecret}.For("patients")[0]
		patientOpts.ICEServers = []webrtc.ICEServer{{URLs: s.URLs, Username: s.Username, Credential: s.Credential}}
	}
	for i := range calls {
		cfg.Members = append(cfg.Members, "user:d"+strconv.Itoa(i), "visit:p"+strconv.Itoa(i))
	}
	// One call per pair: each doctor hears only its patient.
	m := labnode.StartMedia(b, lab, mediaNS, public, cfg)
	var doctors, patients []*labnode.Peer
	for i := range calls {
		n := strconv.Itoa(i)
		doctors = append(doctors, labnode.StartPeer(b, lab, doctorNS, labnode.PeerConfig{URL: m.URL, ID: "user:d" + n, Call: "call", Tag: byte('a' + i), From: []byte{byte('A' + i)}, Options: load}))
		patients = append(patients, labnode.StartPeer(b, lab, patientNS, labnode.PeerConfig{URL: m.URL, ID: "visit:p" + n, Call: "call", Tag: byte('A' + i), From: []byte{byte('a' + i)}, Options: patientOpts}))
	}
	total := func() (sum int, locals []string) {
		for i, p := range append(append([]*labnode.Peer{}, doctors...), patients...) {
			st := p.Latest(b, 5*time.Second)
			for _, n := range st.Received {
				sum += n
			}
			if i >= len(doctors) {
				locals = append(locals, st.Local)
			}
		}
		return sum, locals
	}
	for i, p := range patients {
		if st, ok := p.Until(b, 20*time.Second, labnode.Hears(50, byte('a'+i))); !ok {
			b.Fatalf("%s: patient %d hears nothing from its doctor: %+v", mode, i, st)
		}
	}
	time.Sleep(2 * time.Second) // past the first keyframes and renegotiations
	before, locals := total()
	for _, l := range locals {
		want := map[string]string{"direct": "host/udp", "turn": "relay/udp"}[mode]
		if l != want {
			b.Fatalf("%s: a patient's path is %q, not %q", mode, l, want)
		}
	}
	cpu0, err := bench.ProcessUsage(m.Pid())
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(window)
	cpu1, _ := bench.ProcessUsage(m.Pid())
	after, _ := total()
	packets := float64(after - before)
	b.Logf("%s: %d calls, %.0f packets delivered in %v, media node %.2f CPU-s", mode, calls, packets, window, cpu1.CPUSeconds-cpu0.CPUSeconds)
	return packets / (cpu1.CPUSeconds - cpu0.CPUSeconds)
}
