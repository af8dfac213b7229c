package httpx

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serveForTest runs h with short timeouts until the test ends.
func serveForTest(t *testing.T, h http.Handler) string {
	t.Helper()
	oldRead, oldIdle := ReadTimeout, IdleTimeout
	ReadTimeout, IdleTimeout = 300*time.Millisecond, 300*time.Millisecond
	t.Cleanup(func() { ReadTimeout, IdleTimeout = oldRead, oldIdle })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, h) }()
	t.Cleanup(func() { cancel(); <-done })
	return l.Addr().String()
}

// A client that stalls in the middle of its body is cut off by the read
// timeout; a live stream that lifted its read deadline keeps writing past
// it, its request not cancelled; an idle keep-alive connection closes.
func TestTimeouts(t *testing.T) {
	addr := serveForTest(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			KeepReading(w)
			for i := 0; i < 8; i++ {
				select {
				case <-r.Context().Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
				fmt.Fprintf(w, "tick %d\n", i)
				w.(http.Flusher).Flush()
			}
			return
		}
		_, _ = io.ReadAll(r.Body)
	}))

	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly a little")
	_ = slow.SetReadDeadline(time.Now().Add(3 * time.Second))
	start := time.Now()
	_, err = bufio.NewReader(slow).ReadString('\n')
	if err == nil && time.Since(start) > 2*time.Second {
		t.Fatal("a stalled body held the connection")
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("the stalled client was cut off only after %s", time.Since(start))
	}

	resp, err := http.Get("http://" + addr + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := strings.Count(string(body), "tick"); got != 8 {
		t.Fatalf("the stream was cut after %d of 8 ticks (800 ms, past the 300 ms read timeout)", got)
	}

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
	rd := bufio.NewReader(idle)
	_ = idle.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := http.ReadResponse(rd, nil); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if _, err := rd.ReadByte(); err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("an idle keep-alive connection stayed open (%v after %s)", err, time.Since(start))
	}
}
