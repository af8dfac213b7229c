// Package temporalx connects Handoff's processes to Temporal and prepares a
// namespace for them.
package temporalx

import (
	"context"
	"fmt"
	"log/slog"
	"sort"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/handoff-telehealth/handoff/config"
	"github.com/handoff-telehealth/handoff/tracing"
	"github.com/handoff-telehealth/handoff/workflows"
)

// Dial connects to the Temporal frontend named by cfg, with the payload
// codec on: nothing this client sends reaches Temporal unencrypted.
// metrics, when not nil, receives the SDK's own metrics.
func Dial(ctx context.Context, cfg config.Temporal, logger *slog.Logger, metrics client.MetricsHandler) (client.Client, error) {
	codec, err := ParseKeys(cfg.CodecKeys)
	if err != nil {
		return nil, err
	}
	opts := ClientOptions(cfg, codec, logger)
	if metrics != nil {
		opts.MetricsHandler = metrics
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Temporal at %s (namespace %q): %w", cfg.Address, cfg.Namespace, err)
	}
	return c, nil
}

// DialAdmin connects without the codec, for namespace administration that
// carries no payloads (registering search attributes).
func DialAdmin(ctx context.Context, cfg config.Temporal, logger *slog.Logger) (client.Client, error) {
	c, err := client.DialContext(ctx, client.Options{HostPort: cfg.Address, Namespace: cfg.Namespace, Logger: sdklog.NewStructuredLogger(logger)})
	if err != nil {
		return nil, fmt.Errorf("cannot reach Temporal at %s (namespace %q): %w", cfg.Address, cfg.Namespace, err)
	}
	return c, nil
}

// EnsureSearchAttributes registers Handoff's search attributes on the
// namespace, adding only the missing ones; it returns the names it added.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) ([]string, error) {
	ops := c.OperatorService()
	have, err := ops.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return nil, fmt.Errorf("listing search attributes of %q: %w", namespace, err)
	}
	req := &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: map[string]enumspb.IndexedValueType{}}
	for name, typ := range workflows.SearchAttributes() {
		if got, ok := have.GetCustomAttributes()[name]; ok {
			if got != typ {
				return nil, fmt.Errorf("search attribute %s exists on %q as %s, Handoff needs %s", name, namespace, got, typ)
			}
			continue
		}
		req.SearchAttributes[name] = typ
	}
	if len(req.SearchAttributes) == 0 {
		return nil, nil
	}
	if _, err := ops.AddSearchAttributes(ctx, req); err != nil {
		return nil, fmt.Errorf("adding search attributes to %q: %w", namespace, err)
	}
	added := make([]string, 0, len(req.SearchAttributes))
	for name := range req.SearchAttributes {
		added = append(added, name)
	}
	sort.Strings(added)
	return added, nil
}

// ClientOptions are the options of every Handoff client and worker.
// With tracing on, its interceptor rides along; workers made from the client
// inherit it.
func ClientOptions(cfg config.Temporal, codec *Codec, logger *slog.Logger) client.Options {
	interceptors, err := tracing.TemporalInterceptors()
	if err != nil {
		logger.Warn("tracing interceptor unavailable; continuing without", "error", err)
	}
	return client.Options{
		HostPort:         cfg.Address,
		Namespace:        cfg.Namespace,
		Logger:           sdklog.NewStructuredLogger(logger),
		DataConverter:    codec.DataConverter(),
		FailureConverter: codec.FailureConverter(),
		Interceptors:     interceptors,
	}
}
