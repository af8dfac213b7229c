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

// The dev server's visibility table keeps the indexes the UI's list and
// Handoff's search attributes (keywords, an int) are found by, and loses
// those of attributes no visit sets; trimming again, as every start of an
// existing data directory does, changes nothing.
func TestVisibilityKeepsOnlyTheIndexesVisitsAreFoundBy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "temporal.db")
	require.NoError(t, sqliteschema.SetupSchema(sqliteConfig(path)))
	indexes := func() map[string]bool {
		db, err := sql.Open("sqlite", "file:"+path)
		require.NoError(t, err)
		defer db.Close()
		rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'executions_visibility' AND sql IS NOT NULL`)
		require.NoError(t, err)
		defer rows.Close()
		names := map[string]bool{}
		for rows.Next() {
			var n string
			require.NoError(t, rows.Scan(&n))
			names[n] = true
		}
		return names
	}
	before := indexes()
	for _, name := range unusedVisibilityIndexes {
		require.True(t, before[name], "the schema has %s", name)
	}
	for range 2 {
		require.NoError(t, trimVisibilityIndexes(path))
		after := indexes()
		for _, name := range unusedVisibilityIndexes {
			require.False(t, after[name], "%s is dropped", name)
		}
		for _, name := range []string{"default_idx", "by_execution_time", "by_workflow_id", "by_workflow_type", "by_status",
			"by_temporal_namespace_division", "by_keyword_01", "by_keyword_10", "by_int_01", "by_int_03"} {
			require.True(t, after[name], "%s is kept", name)
		}
		require.Len(t, after, len(before)-len(unusedVisibilityIndexes))
	}
}
