package store_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The store is the only package that speaks GORM: every other package asks
// it questions by name (store.Queries), so a query's conditions live once.
// Tests may read rows directly through DB.Gorm to check what was written.
func TestNoGORMOutsideTheStore(t *testing.T) {
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	var offenders []string
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == "store" || strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			if strings.HasPrefix(strings.Trim(imp.Path.Value, `"`), "gorm.io/") {
				offenders = append(offenders, rel+" imports "+imp.Path.Value)
			}
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(src), ".Gorm()") && !strings.Contains(rel, "testkit") {
			offenders = append(offenders, rel+" calls DB.Gorm")
		}
		return nil
	})
	require.NoError(t, err)
	require.Empty(t, offenders, "only store/ may query with GORM")
}
