package media

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/handoff-telehealth/handoff/tracing"
)

// ControlClient drives a media node's control API over HTTP; workers use it
// when the media node is another process.
type ControlClient struct {
	base, token string
	http        *http.Client
}

// NewControlClient talks to the media node at base (http://host:port).
func NewControlClient(base, token string) *ControlClient {
	return &ControlClient{base: base, token: token, http: &http.Client{Timeout: 5 * time.Second, Transport: tracing.Transport(nil)}}
}

func (c *ControlClient) do(ctx context.Context, method, path string) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("media control %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return ErrNoSuchCall
	case resp.StatusCode >= 300:
		return fmt.Errorf("media control %s %s: %s", method, path, resp.Status)
	}
	return nil
}

func callPath(callID string) string { return "/control/calls/" + url.PathEscape(callID) }

// CreateCall implements activities.Media.
func (c *ControlClient) CreateCall(ctx context.Context, callID string) error {
	return c.do(ctx, http.MethodPost, callPath(callID))
}

// Attach implements activities.Media.
func (c *ControlClient) Attach(ctx context.Context, callID, participant string) error {
	return c.do(ctx, http.MethodPut, callPath(callID)+"/members/"+url.PathEscape(participant))
}

// Detach implements activities.Media.
func (c *ControlClient) Detach(ctx context.Context, callID, participant string) error {
	return c.do(ctx, http.MethodDelete, callPath(callID)+"/members/"+url.PathEscape(participant))
}

// EndCall implements activities.Media.
func (c *ControlClient) EndCall(ctx context.Context, callID string) error {
	return c.do(ctx, http.MethodDelete, callPath(callID))
}
