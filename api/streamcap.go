package api

import (
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"
)

// maxStreamsPerPrincipal bounds the live-event streams one provider (all
// their sessions) or one visit's patient may hold open in this process: a
// person has a few tabs, not hundreds.
const maxStreamsPerPrincipal = 10

var errTooManyStreams = newError(http.StatusTooManyRequests, "too_many_streams",
	"too many live connections are open for you; close other tabs or windows of Handoff")

// streamCap counts open streams by principal.
type streamCap struct {
	mu   sync.Mutex
	open map[string]int
}

func newStreamCap() *streamCap { return &streamCap{open: map[string]int{}} }

// take holds a slot for principal; release gives it back. A refusal
// says when to try again (EventSource retries by itself).
func (s *streamCap) take(c *gin.Context, principal string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[principal] >= maxStreamsPerPrincipal {
		c.Header("Retry-After", "5")
		return nil, errTooManyStreams
	}
	s.open[principal]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.open[principal]--; s.open[principal] <= 0 {
			delete(s.open, principal)
		}
	}, nil
}

// principal names whose streams cl's stream counts against.
func (cl *caller) principal() string {
	if cl.User != nil {
		return "user:" + cl.User.ID
	}
	return "visit:" + cl.Visit.ID
}
