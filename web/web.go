// Package web holds the pages the API serves: the provider dashboard and the
// patient page, embedded in the binary so no front-end server is needed.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// Files is the tree served at the site's root.
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embed pattern above guarantees the folder
	}
	return sub
}
