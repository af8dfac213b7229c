package devserver

import (
	"database/sql"
	"net"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	sqliteschema "go.temporal.io/server/schema/sqlite"

	"github.com/handoff-telehealth/handoff/workflows"
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
// the slots Handoff's search attributes are mapped to are found by, and
// loses the others; every start trims again, and indexes a slot mapped since.
func TestVisibilityKeepsOnlyTheIndexesVisitsAreFoundBy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "temporal.db")
	cfg := sqliteConfig(path)
	require.NoError(t, sqliteschema.SetupSchema(cfg))
	ns, err := sqliteschema.NewNamespaceConfig("active", "default", false, workflows.SearchAttributes())
	require.NoError(t, err)
	require.NoError(t, sqliteschema.CreateNamespaces(cfg, ns))
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer db.Close()
	indexes := func() map[string]bool {
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
	require.Len(t, before, 58)
	mapped := map[string]bool{}
	for column := range ns.Detail.GetConfig().GetCustomSearchAttributeAliases() {
		mapped[customSlotIndexes()[column]] = true
	}
	require.Len(t, mapped, len(workflows.SearchAttributes()), "each attribute has an indexed slot")

	for run := range 2 {
		require.NoError(t, trimVisibilityIndexes(path, "default"))
		after := indexes()
		for _, name := range unusedVisibilityIndexes {
			require.False(t, after[name], "%s is dropped", name)
		}
		for _, name := range customSlotIndexes() {
			require.Equal(t, mapped[name], after[name], "%s is kept only if an attribute is mapped to its slot", name)
		}
		for _, name := range []string{"default_idx", "by_execution_time", "by_workflow_id", "by_workflow_type", "by_status", "by_temporal_namespace_division"} {
			require.True(t, after[name], "%s is kept", name)
		}
		require.Len(t, after, 6+len(mapped))
		if run == 0 { // a slot whose index a start before dropped
			for name := range mapped {
				_, err := db.Exec(`DROP INDEX ` + name)
				require.NoError(t, err)
				break
			}
		}
	}
}
