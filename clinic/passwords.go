package clinic

import (
	_ "embed"
	"strings"
	"sync"
)

// commonPasswords is a list of the most used passwords of MinPassword
// characters or more, from published breach corpora, one per line, lower
// case.
//
//go:embed common-passwords.txt
var commonPasswords string

var commonSet = sync.OnceValue(func() map[string]bool {
	set := map[string]bool{}
	for _, line := range strings.Split(commonPasswords, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			set[line] = true
		}
	}
	return set
})

// isCommonPassword: on the list (any case), or one character repeated, or
// a run of consecutive keys or digits.
func isCommonPassword(pw string) bool {
	lower := strings.ToLower(pw)
	if commonSet()[lower] {
		return true
	}
	if strings.Count(lower, lower[:1]) == len(lower) {
		return true
	}
	for _, run := range []string{"01234567890123456789", "98765432109876543210", "abcdefghijklmnopqrstuvwxyz", "qwertyuiopasdfghjklzxcvbnm"} {
		if strings.Contains(run, lower) {
			return true
		}
	}
	return false
}
