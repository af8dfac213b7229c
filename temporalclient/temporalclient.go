// Package temporalclient connects Handoff's processes to Temporal: the client
// options every client and worker shares, with the payload codec on.
package temporalclient

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/handoff-telehealth/handoff/codec"
	"github.com/handoff-telehealth/handoff/config"
	"github.com/handoff-telehealth/handoff/tracing"
)

// Dial connects to the Temporal frontend named by cfg, with the payload
// codec c on: nothing this client sends reaches Temporal unencrypted.
// metrics, when not nil, receives the SDK's own metrics.
func Dial(ctx context.Context, cfg config.Temporal, c *codec.Codec, logger *slog.Logger, metrics client.MetricsHandler) (client.Client, error) {
	opts := Options(cfg, c, logger)
	if metrics != nil {
		opts.MetricsHandler = metrics
	}
	tc, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, unreachable(cfg, err)
	}
	return tc, nil
}

// DialAdmin connects without the codec, for namespace administration that
// carries no payloads (registering search attributes).
func DialAdmin(ctx context.Context, cfg config.Temporal, logger *slog.Logger) (client.Client, error) {
	c, err := client.DialContext(ctx, client.Options{HostPort: cfg.Address, Namespace: cfg.Namespace, Logger: sdklog.NewStructuredLogger(logger)})
	if err != nil {
		return nil, unreachable(cfg, err)
	}
	return c, nil
}

func unreachable(cfg config.Temporal, err error) error {
	return fmt.Errorf("cannot reach Temporal at %s (namespace %q): %w", cfg.Address, cfg.Namespace, err)
}

// Options are the options of every Handoff client and worker.
// With tracing on, its interceptor rides along; workers made from the client
// inherit it.
func Options(cfg config.Temporal, c *codec.Codec, logger *slog.Logger) client.Options {
	interceptors, err := tracing.TemporalInterceptors()
	if err != nil {
		logger.Warn("tracing interceptor unavailable; continuing without", "error", err)
	}
	opts := client.Options{
		HostPort:         cfg.Address,
		Namespace:        cfg.Namespace,
		Logger:           sdklog.NewStructuredLogger(logger),
		DataConverter:    c.DataConverter(),
		FailureConverter: c.FailureConverter(),
		Interceptors:     interceptors,
	}
	if onThisMachine(cfg.Address) {
		// The SDK gzips every request by default. Payloads are encrypted, so
		// they do not compress, and over loopback nothing is gained: gzip was
		// 3.6% of `handoff dev`'s CPU at 25 check-ins/s (BENCHMARKS.md).
		opts.ConnectionOptions.GrpcCompression = &client.GrpcCompressionNone{}
	}
	return opts
}

// onThisMachine says whether a host:port is a loopback address.
func onThisMachine(address string) bool {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
