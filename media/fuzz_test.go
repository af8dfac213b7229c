package media

import (
	"testing"
)

func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{`{"type":"answer","sdp":"v=0"}`, `{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host"}}`,
		`{"type":"join","token":"a.b"}`, `{"type":"leave"}`, `{"type":"offer","sdp":"x"}`, `{"type":`, `{"type":"candidate"}`, `null`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := parseMessage(raw)
		if err != nil {
			return
		}
		switch m.Type {
		case "answer":
			if m.SDP == "" {
				t.Fatal("an answer without SDP passed")
			}
		case "candidate":
			if m.Candidate == nil {
				t.Fatal("a candidate message without a candidate passed")
			}
		case "join":
			if m.Token == "" {
				t.Fatal("a join without a token passed")
			}
		case "leave":
		default:
			t.Fatalf("type %q passed", m.Type)
		}
	})
}
