// Command floorrelay is the floor of Handoff's media forwarding: the least a
// pion relay can do for a 2-party call. It is what a minimal pion example
// does — webrtc.NewPeerConnection with the default codecs and interceptors,
// and a loop per received track that reads a packet and writes it to the
// other party — with no call logic, gating or metrics beyond one counter.
//
// Signaling is one request per party, non-trickle:
//
//	POST /offer?call=X   body: a complete SDP offer   reply: the complete answer
//
// The first party of a call gets slot 0, the second slot 1; a third is
// refused. GET /metrics replies with the forwarded-packets counter.
//
// A party may send its camera as several video tracks (simulcast, each
// layer on its own m-line, the full layer first, as Handoff's pages do):
// the relay reads them all and forwards the first, the least a simulcast
// forwarder does (Handoff's node also reads every layer and sends each
// subscriber one).
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/pion/webrtc/v4"
)

// forwarded counts packets read from one party and written to the other.
var forwarded atomic.Int64

// call is one 2-party call. Both parties' outgoing tracks exist from the
// start, so each answer already carries them and the second party's arrival
// needs no renegotiation: until then the first party's packets are written
// to a track with no binding, which is a no-op.
type call struct {
	out     [2]map[webrtc.RTPCodecType]*webrtc.TrackLocalStaticRTP // out[i]: what party i receives
	parties int
}

type relay struct {
	mu    sync.Mutex
	calls map[string]*call
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8090", "address of the signaling and metrics endpoints")
	flag.Parse()
	r := &relay{calls: map[string]*call{}}
	http.HandleFunc("POST /offer", r.offer)
	http.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "floorrelay_forwarded_packets_total %d\n", forwarded.Load())
	})
	http.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	log.Fatal(http.ListenAndServe(*listen, nil))
}

// join gives the next free slot of call id, creating the call's tracks on
// its first party.
func (r *relay) join(id string) (*call, int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls[id]
	if c == nil {
		c = &call{}
		for i := range c.out {
			audio, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", fmt.Sprintf("%s-%d", id, 1-i))
			if err != nil {
				return nil, 0, err
			}
			video, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", fmt.Sprintf("%s-%d", id, 1-i))
			if err != nil {
				return nil, 0, err
			}
			c.out[i] = map[webrtc.RTPCodecType]*webrtc.TrackLocalStaticRTP{webrtc.RTPCodecTypeAudio: audio, webrtc.RTPCodecTypeVideo: video}
		}
		r.calls[id] = c
	}
	if c.parties == len(c.out) {
		return nil, 0, fmt.Errorf("call %s is full", id)
	}
	c.parties++
	return c, c.parties - 1, nil
}

// offer answers one party's offer and relays its tracks to the other party.
func (r *relay) offer(w http.ResponseWriter, req *http.Request) {
	sdp, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c, slot, err := r.join(req.URL.Query().Get("call"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	answer, err := answer(c, slot, string(sdp))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = io.WriteString(w, answer)
}

// answer makes party slot's PeerConnection: it sends the other party's
// media to slot, and forwards what slot sends to the other party.
func answer(c *call, slot int, offer string) (string, error) {
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", err
	}
	for _, track := range c.out[slot] {
		sender, err := pc.AddTrack(track)
		if err != nil {
			_ = pc.Close()
			return "", err
		}
		go drainRTCP(sender)
	}
	pc.OnTrack(func(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
		if remote.Kind() == webrtc.RTPCodecTypeVideo && !firstVideo(pc, receiver) {
			discard(remote)
			return
		}
		forward(remote, c.out[1-slot][remote.Kind()])
	})
	// A party that hung up fails ICE in time; its read loops end on Close.
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed {
			_ = pc.Close()
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		_ = pc.Close()
		return "", err
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		_ = pc.Close()
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		_ = pc.Close()
		return "", err
	}
	<-gathered
	return pc.LocalDescription().SDP, nil
}

// forward is the whole relay: read a packet, write it to the other party.
func forward(remote *webrtc.TrackRemote, local *webrtc.TrackLocalStaticRTP) {
	buf := make([]byte, 1500)
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
		}
		if _, err := local.Write(buf[:n]); err != nil {
			continue
		}
		forwarded.Add(1)
	}
}

// firstVideo tells whether receiver's m-line is the party's first video one
// (a simulcast camera's full layer).
func firstVideo(pc *webrtc.PeerConnection, receiver *webrtc.RTPReceiver) bool {
	for _, t := range pc.GetTransceivers() {
		if t.Kind() == webrtc.RTPCodecTypeVideo {
			return t.Receiver() == receiver
		}
	}
	return false
}

// discard reads a layer that is not forwarded.
func discard(remote *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := remote.Read(buf); err != nil {
			return
		}
	}
}

// drainRTCP reads a sender's RTCP so that the interceptors (NACK, reports)
// see it, as pion's examples do.
func drainRTCP(sender *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := sender.Read(buf); err != nil {
			return
		}
	}
}
