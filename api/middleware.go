package api

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

const requestIDKey = "request_id"

// requestID tags each request, in its response and in every log line.
func (h *handlers) requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-Id")
	if id == "" || len(id) > 64 {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		id = hex.EncodeToString(b)
	}
	c.Set(requestIDKey, id)
	c.Header("X-Request-Id", id)
	c.Next()
}

// accessLog logs the route pattern, never the path's query (it can carry a
// token) nor bodies (they can carry patient data).
func (h *handlers) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	took := time.Since(start)
	h.Logger.Info("request", "request_id", c.GetString(requestIDKey), "method", c.Request.Method,
		"route", c.FullPath(), "status", c.Writer.Status(), "ms", took.Milliseconds())
	h.Metrics.ObserveRequest(c.FullPath(), c.Request.Method, c.Writer.Status(), took)
}

// limitBody refuses bodies larger than any request of the API needs.
func limitBody(max int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > max {
			fail(c, newError(http.StatusRequestEntityTooLarge, "too_large", "request body too large"))
			return
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, max)
		c.Next()
	}
}

// rateLimit allows each client address a burst and a steady rate.
func rateLimit(perSecond float64, burst int) gin.HandlerFunc {
	var mu sync.Mutex
	limiters := map[string]*rate.Limiter{}
	lastSweep := time.Now()
	return func(c *gin.Context) {
		ip := c.ClientIP()
		mu.Lock()
		if time.Since(lastSweep) > 10*time.Minute { // forget idle clients
			limiters, lastSweep = map[string]*rate.Limiter{}, time.Now()
		}
		l, ok := limiters[ip]
		if !ok {
			l = rate.NewLimiter(rate.Limit(perSecond), burst)
			limiters[ip] = l
		}
		mu.Unlock()
		if !l.Allow() {
			c.Header("Retry-After", "1")
			fail(c, newError(http.StatusTooManyRequests, "rate_limited", "too many requests; slow down"))
			return
		}
		c.Next()
	}
}

// apiHeaders keep patient data out of caches and answers from being read
// as anything but what they say they are.
func apiHeaders(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Next()
}

// limitIdempotencyKey refuses an Idempotency-Key longer than any client
// needs, on every route (it becomes a Temporal update id).
func limitIdempotencyKey(c *gin.Context) {
	if len(c.GetHeader("Idempotency-Key")) > maxIdempotencyKey {
		fail(c, errBadRequest("Idempotency-Key is longer than 200 characters"))
		return
	}
	c.Next()
}
