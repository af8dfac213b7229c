// Package web holds the pages the API serves: the provider dashboard and the
// patient page, embedded in the binary so no front-end server is needed.
package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"
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

// Languages are the patient page's message catalogues (static/i18n/<code>.json),
// by code, with the name each gives itself ("_name"). Adding a language is
// adding its file.
func Languages() (map[string]string, error) {
	files, err := fs.Glob(static, "static/i18n/*.json")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, f := range files {
		raw, err := static.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var cat map[string]string
		if err := json.Unmarshal(raw, &cat); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out[strings.TrimSuffix(path.Base(f), ".json")] = cat["_name"]
	}
	return out, nil
}
