package media

import (
	"context"
	"slices"
	"sync"
)

// Calls is the media node's record of which participants are bound into
// which call. The SFU forwards packets only between members of one call, so
// this membership is what admit and detach change. Every operation is
// idempotent, as the activities that call it may run twice.
type Calls struct {
	mu    sync.Mutex
	calls map[string]*call
}

type call struct {
	members []string
	ended   bool
}

// NewCalls makes an empty call registry.
func NewCalls() *Calls { return &Calls{calls: map[string]*call{}} }

// CreateCall opens a call; creating an existing call changes nothing.
func (c *Calls) CreateCall(_ context.Context, callID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.calls[callID]; !ok {
		c.calls[callID] = &call{}
	}
	return nil
}

// Attach binds a participant into a live call.
func (c *Calls) Attach(_ context.Context, callID, participant string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.calls[callID]
	if !ok || cl.ended {
		return ErrNoSuchCall
	}
	if !slices.Contains(cl.members, participant) {
		cl.members = append(cl.members, participant)
	}
	return nil
}

// Detach unbinds a participant; detaching a non-member changes nothing.
func (c *Calls) Detach(_ context.Context, callID, participant string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.calls[callID]; ok {
		cl.members = slices.DeleteFunc(cl.members, func(m string) bool { return m == participant })
	}
	return nil
}

// EndCall unbinds everyone and closes the call.
func (c *Calls) EndCall(_ context.Context, callID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.calls[callID]; ok {
		cl.members, cl.ended = nil, true
	}
	return nil
}

// Members lists a call's participants, and whether the call is live.
func (c *Calls) Members(callID string) (members []string, live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.calls[callID]
	if !ok {
		return nil, false
	}
	return slices.Clone(cl.members), !cl.ended
}

// ErrNoSuchCall is returned when attaching to a call that is not live.
var ErrNoSuchCall = errorString("no such live call")

type errorString string

func (e errorString) Error() string { return string(e) }
