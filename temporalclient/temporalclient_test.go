package temporalclient

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Requests to a Temporal frontend on this machine go uncompressed; to any
// other, gzipped as the SDK does by default.
func TestOnlyLoopbackGoesUncompressed(t *testing.T) {
	for address, local := range map[string]bool{
		"127.0.0.1:7233": true, "localhost:7233": true, "[::1]:7233": true, "127.0.0.5:1": true,
		"temporal:7233": false, "10.0.0.4:7233": false, "[2001:db8::1]:7233": false, "127.0.0.1": false, "": false,
	} {
		require.Equal(t, local, onThisMachine(address), address)
	}
}
