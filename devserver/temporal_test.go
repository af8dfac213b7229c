package devserver

import (
	"database/sql"
	"net"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	sqliteschema "go.temporal.io/server/schema/sqlite"
)

// A data directory from when every task queue had four partitions keeps
// them read until their tasks are gone; any other is read from one.
func TestTaskPartitionsReadsOldPartitionsUntilTheyAreEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "temporal.db")
	require.NoError(t, sqliteschema.SetupSchema(sqliteConfig(path)))

	n, err := taskPartitions(path)
	require.NoError(t, err)
	require.Equal(t, 1, n, "a new data directory")

	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer db.Close()
	insert := func(queue string) {
		_, err := db.Exec(`INSERT INTO tasks (range_hash, task_queue_id, task_id, data, data_encoding) VALUES (1, ?, 1, x'00', 'proto3')`,
			append([]byte("0123456789abcdef"), append([]byte(queue), 1)...))
		require.NoError(t, err)
	}
	insert("handoff-visits")
	n, err = taskPartitions(path)
	require.NoError(t, err)
	require.Equal(t, 1, n, "tasks in the first partition are read either way")

	insert("/_sys/handoff-visits/2")
	n, err = taskPartitions(path)
	require.NoError(t, err)
	require.Equal(t, 4, n, "a task waits in another partition")

	_, err = db.Exec(`DELETE FROM tasks`)
	require.NoError(t, err)
	n, err = taskPartitions(path)
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

// Ports for the embedded services come from below the ephemeral range, so
// an outgoing connection cannot take one before the server binds it, and
// one process never gets the same port twice: a test's frontend port and
// its servers' internal ports come from separate calls.
func TestFreePortsAreDistinctFreeAndOutsideTheEphemeralRange(t *testing.T) {
	first, err := FreePorts("127.0.0.1", 1)
	require.NoError(t, err)
	rest, err := FreePorts("127.0.0.1", 49)
	require.NoError(t, err)
	ports := append(first, rest...)
	seen := map[int]bool{}
	for _, p := range ports {
		require.False(t, seen[p], "port %d handed out twice", p)
		seen[p] = true
		require.GreaterOrEqual(t, p, lowPortStart)
		require.Less(t, p, lowPortEnd)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		require.NoError(t, err, "port %d is free", p)
		_ = l.Close()
	}
}
