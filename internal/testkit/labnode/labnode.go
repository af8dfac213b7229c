// Package labnode runs a media node or a pion peer as its own process inside
// a netlab namespace: the test binary runs itself again (Main, from a
// helper test) with its role in the environment. The test side starts them
// with StartMedia and StartPeer and reads what they print.
package labnode

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/handoff-telehealth/handoff/internal/testkit/mediatest"
	"github.com/handoff-telehealth/handoff/internal/testkit/netlab"
	"github.com/handoff-telehealth/handoff/media"
)

// Secret signs the lab's media tokens; ControlToken guards its control API.
const (
	Secret     = "lab-media-secret"
	TURNSecret = "lab-turn-secret"
	roleEnv    = "HANDOFF_LAB_ROLE"
	configEnv  = "HANDOFF_LAB_CONFIG"
)

// MediaConfig is a lab media node: its network, its TURN server, and the
// call it opens with its members already attached.
type MediaConfig struct {
	Listen  string // host:port of signaling
	Network media.Network
	TURN    media.TURN
	Call    string
	Members []string
}

// PeerConfig is a lab peer: it joins Call as ID, sends media tagged Tag and
// watches for media tagged From.
type PeerConfig struct {
	URL      string
	ID, Call string
	Tag      byte
	From     []byte
	Options  mediatest.Options
	// RestartOnDisconnect asks for an ICE restart when the path goes down,
	// as the pages do.
	RestartOnDisconnect bool
}

// Stats is what a peer prints every 100 ms.
type Stats struct {
	Received map[string]int // "<tag>/<kind>" → packets
	State    string         // ICE connection state
	Local    string         // selected local candidate: "host/udp", "relay/udp", "host/tcp", …
	Restarts int            // ICE restarts seen (new remote credentials)
	Resumes  int64          // signaling sockets resumed on the same session
	Errors   []string       // signaling errors the peer saw
	// ICEMs and ConnectedMs are when ICE, then DTLS, connected (ms after
	// the join; 0: not yet).
	ICEMs, ConnectedMs float64
	// FirstAudio and FirstVideo are when the first packet from each From
	// tag arrived, in ms after the join was sent (0: not yet).
	FirstAudio, FirstVideo map[string]float64
	// Layer is the camera layer ('f', 'h', 'q') each From tag's video
	// last came on; LayerPackets counts video packets by "<tag>/<layer>".
	Layer        map[string]string
	LayerPackets map[string]int
	// MaxAudioGapMs is the longest wait between two audio packets from each
	// From tag since the peer started or was told "resetgaps".
	MaxAudioGapMs map[string]float64
	// VideoPaused: the node said it paused this peer's video to keep the
	// sound clear (and has not said it resumed); Pauses counts such notices.
	VideoPaused bool
	Pauses      int
}

// Main runs a lab role if this process is one, and reports whether it was.
// Call it first thing in a helper test.
func Main(t *testing.T) bool {
	role := os.Getenv(roleEnv)
	if role == "" {
		return false
	}
	switch role {
	case "media":
		var cfg MediaConfig
		must(json.Unmarshal([]byte(os.Getenv(configEnv)), &cfg))
		runMedia(cfg)
	case "peer":
		var cfg PeerConfig
		must(json.Unmarshal([]byte(os.Getenv(configEnv)), &cfg))
		runPeer(t, cfg)
	}
	return true
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "labnode:", err)
		os.Exit(2)
	}
}

func runMedia(cfg MediaConfig) {
	srv, err := media.NewServerWith(Secret, "lab-control", media.Options{Network: cfg.Network})
	must(err)
	ts, err := media.StartTURN(cfg.TURN, media.LocalIPs())
	must(err)
	ctx := context.Background()
	must(srv.SFU.CreateCall(ctx, cfg.Call))
	for _, m := range cfg.Members {
		must(srv.SFU.Attach(ctx, cfg.Call, m))
	}
	hs := &http.Server{Addr: cfg.Listen, Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { must(hs.ListenAndServe()) }()
	fmt.Println("READY")
	waitForEnd()
	srv.SFU.Shutdown()
	_ = ts.Close()
	_ = srv.SFU.Close()
}

// waitForEnd returns when stdin closes (the test stopped us) or on SIGTERM.
func waitForEnd() {
	done := make(chan struct{})
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := os.Stdin.Read(buf); err != nil {
				close(done)
				return
			}
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-done:
	case <-sig:
	}
}

func runPeer(t *testing.T, cfg PeerConfig) {
	tokens := media.NewTokens(Secret)
	p := mediatest.DialWith(t, cfg.URL, tokens.Mint(cfg.ID, "", time.Hour), cfg.ID, cfg.Tag, cfg.Options)
	ufrags := map[string]bool{}
	var restartedAt time.Time
	if cfg.RestartOnDisconnect {
		p.PC.OnICEConnectionStateChange(func(st webrtc.ICEConnectionState) {
			if (st == webrtc.ICEConnectionStateDisconnected || st == webrtc.ICEConnectionStateFailed) && time.Since(restartedAt) > 5*time.Second {
				restartedAt = time.Now()
				p.Send(mediatest.Message{Type: "restart"})
			}
		})
	}
	var iceAt, connectedAt atomic.Int64
	p.PC.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			connectedAt.CompareAndSwap(0, time.Now().UnixMicro())
		}
	})
	joined := time.Now()
	p.Join(tokens.Mint(cfg.ID, cfg.Call, time.Hour))
	first := map[string]time.Time{}
	var errs []string
	paused, pauses := false, 0
	commands := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			commands <- sc.Text()
		}
		close(commands)
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case c, ok := <-commands:
			if !ok {
				p.Close()
				return
			}
			switch c {
			case "restart":
				p.Send(mediatest.Message{Type: "restart"})
			case "resetgaps":
				p.ResetAudioGaps()
			}
		case <-tick.C:
		}
		st := Stats{Received: map[string]int{}, State: p.PC.ICEConnectionState().String(), FirstAudio: map[string]float64{}, FirstVideo: map[string]float64{},
			Layer: map[string]string{}, LayerPackets: map[string]int{}, MaxAudioGapMs: map[string]float64{}}
		for drained := false; !drained; {
			select {
			case e, ok := <-p.Events:
				switch {
				case !ok:
					drained = true
				case e.Type == "video_paused":
					paused = true
					pauses++
				case e.Type == "video_resumed":
					paused = false
				}
			default:
				drained = true
			}
		}
		st.VideoPaused, st.Pauses = paused, pauses
		for _, from := range cfg.From {
			tag := string([]byte{from})
			if l := p.Layer(from); l != 0 {
				st.Layer[tag] = string([]byte{l})
			}
			for _, l := range mediatest.Layers {
				if n := p.LayerPackets(from, l.Letter); n > 0 {
					st.LayerPackets[tag+"/"+string([]byte{l.Letter})] = n
				}
			}
			st.MaxAudioGapMs[tag] = float64(p.MaxAudioGap(from).Microseconds()) / 1000
			for _, kind := range []string{"audio", "video", "screen"} {
				key := string([]byte{from}) + "/" + kind
				n := p.Count(from, kind)
				st.Received[key] = n
				if n > 0 && first[key].IsZero() {
					first[key] = p.FirstFrom(from, kind)
				}
				if !first[key].IsZero() {
					ms := float64(first[key].Sub(joined).Microseconds()) / 1000
					switch kind {
					case "audio":
						st.FirstAudio[string([]byte{from})] = ms
					case "video":
						st.FirstVideo[string([]byte{from})] = ms
					}
				}
			}
		}
		if sd := p.PC.CurrentRemoteDescription(); sd != nil {
			for _, line := range strings.Split(sd.SDP, "\n") {
				if strings.HasPrefix(line, "a=ice-ufrag:") {
					ufrags[strings.TrimSpace(line)] = true
				}
			}
		}
		st.Restarts = max(len(ufrags)-1, 0)
		st.Resumes = p.Resumes.Load()
		if iceAt.Load() == 0 && (p.PC.ICEConnectionState() == webrtc.ICEConnectionStateConnected || p.PC.ICEConnectionState() == webrtc.ICEConnectionStateCompleted) {
			iceAt.Store(time.Now().UnixMicro())
		}
		if v := iceAt.Load(); v > 0 {
			st.ICEMs = float64(v-joined.UnixMicro()) / 1000
		}
		if v := connectedAt.Load(); v > 0 {
			st.ConnectedMs = float64(v-joined.UnixMicro()) / 1000
		}
		for drained := false; !drained; {
			select {
			case e := <-p.Errors:
				errs = append(errs, e)
			default:
				drained = true
			}
		}
		st.Errors = errs
		st.Local = selectedLocal(p.PC)
		out, _ := json.Marshal(st)
		fmt.Println("STATS " + string(out))
	}
}

// selectedLocal names the local candidate of the nominated pair.
func selectedLocal(pc *webrtc.PeerConnection) string {
	report := pc.GetStats()
	for _, s := range report {
		pair, ok := s.(webrtc.ICECandidatePairStats)
		if !ok || !pair.Nominated || pair.State != webrtc.StatsICECandidatePairStateSucceeded {
			continue
		}
		if c, ok := report[pair.LocalCandidateID].(webrtc.ICECandidateStats); ok {
			return c.CandidateType.String() + "/" + c.Protocol
		}
	}
	return ""
}

// Media is a lab media node process.
type Media struct {
	*netlab.Proc
	URL string // its signaling WebSocket
}

// StartMedia runs a media node in ns, reached by peers at publicHost.
func StartMedia(t testing.TB, lab *netlab.Lab, ns, publicHost string, cfg MediaConfig) *Media {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "0.0.0.0:8081"
	}
	raw, _ := json.Marshal(cfg)
	p := lab.Start(ns, []string{roleEnv + "=media", configEnv + "=" + string(raw)}, helperArgs()...)
	p.WaitLine(t, "READY", 20*time.Second)
	_, port, _ := strings.Cut(cfg.Listen, ":")
	return &Media{Proc: p, URL: "ws://" + publicHost + ":" + port + "/ws"}
}

// Peer is a lab peer process.
type Peer struct {
	*netlab.Proc
	ID string
}

// StartPeer runs a pion peer in ns.
func StartPeer(t testing.TB, lab *netlab.Lab, ns string, cfg PeerConfig) *Peer {
	t.Helper()
	raw, _ := json.Marshal(cfg)
	return &Peer{Proc: lab.Start(ns, []string{roleEnv + "=peer", configEnv + "=" + string(raw)}, helperArgs()...), ID: cfg.ID}
}

// Latest is the peer's newest stats line (waiting up to within for one).
func (p *Peer) Latest(t testing.TB, within time.Duration) Stats {
	t.Helper()
	var st Stats
	line := p.WaitLine(t, "STATS ", within)
	for more := true; more; {
		select {
		case l, ok := <-p.Lines:
			if !ok {
				more = false
				break
			}
			if strings.HasPrefix(l, "STATS ") {
				line = strings.TrimPrefix(l, "STATS ")
			}
		default:
			more = false
		}
	}
	if err := json.Unmarshal([]byte(line), &st); err != nil {
		t.Fatalf("labnode: stats %q: %v", line, err)
	}
	return st
}

// Until waits (at most within) for stats that satisfy ok, and returns the
// last stats seen either way.
func (p *Peer) Until(t testing.TB, within time.Duration, ok func(Stats) bool) (Stats, bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	var st Stats
	for time.Now().Before(deadline) {
		st = p.Latest(t, 5*time.Second)
		if ok(st) {
			return st, true
		}
	}
	return st, false
}

// Hears reports that the peer received audio and video from every tag.
func Hears(min int, from ...byte) func(Stats) bool {
	return func(st Stats) bool {
		for _, f := range from {
			if st.Received[string([]byte{f})+"/audio"] < min || st.Received[string([]byte{f})+"/video"] < min/3 {
				return false
			}
		}
		return true
	}
}

// helperArgs run this test binary's helper test (TestLabNode) only.
func helperArgs() []string {
	return []string{os.Args[0], "-test.run=^TestLabNode$", "-test.timeout=10m"}
}
