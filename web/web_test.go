package web

import (
	"encoding/json"
	"io/fs"
	"regexp"
	"sort"
	"testing"
)

// Every catalogue says every text the English one has, with the same
// placeholders, and names itself; the English texts of the spec are as the
// spec writes them.
func TestCatalogues(t *testing.T) {
	langs, err := Languages()
	if err != nil {
		t.Fatal(err)
	}
	if langs["en"] != "English" || langs["es"] != "Español" {
		t.Fatalf("languages: %v", langs)
	}
	read := func(code string) map[string]string {
		raw, err := fs.ReadFile(Files(), "i18n/"+code+".json")
		if err != nil {
			t.Fatal(err)
		}
		var cat map[string]string
		if err := json.Unmarshal(raw, &cat); err != nil {
			t.Fatal(err)
		}
		return cat
	}
	en := read("en")
	for key, want := range map[string]string{
		"transfer.starting": "Taking you to {name}'s room now",
		"transfer.done":     "You have been transferred to {name}'s room",
	} {
		if en[key] != want {
			t.Errorf("en %s = %q, the spec says %q", key, en[key], want)
		}
	}
	placeholders := regexp.MustCompile(`\{\w+\}`)
	sorted := func(s string) []string { p := placeholders.FindAllString(s, -1); sort.Strings(p); return p }
	for code := range langs {
		cat := read(code)
		for key, text := range en {
			got, ok := cat[key]
			if !ok || got == "" {
				t.Errorf("%s lacks %s", code, key)
				continue
			}
			if a, b := sorted(text), sorted(got); len(a) != len(b) || (len(a) > 0 && a[0] != b[0]) {
				t.Errorf("%s %s has placeholders %v, English %v", code, key, b, a)
			}
		}
		for key := range cat {
			if _, ok := en[key]; !ok {
				t.Errorf("%s has %s, which English lacks", code, key)
			}
		}
	}
}
