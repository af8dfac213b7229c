package bench

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/google/pprof/profile"
)

// Share is one component's part of a CPU profile.
type Share struct {
	Component string
	Fraction  float64 // of all samples, by the function on top of the stack
}

func (s Share) String() string { return fmt.Sprintf("%s %.0f%%", s.Component, 100*s.Fraction) }

// components map a function's package to the part of the service it is,
// so a profile says which component saturates. First match wins.
var components = []struct{ prefix, name string }{
	{"github.com/handoff-telehealth/", "Handoff's own code"},
	{"go.temporal.io/server/", "Temporal server"},
	{"go.temporal.io/sdk/", "Temporal SDK (client, worker)"},
	{"go.temporal.io/api/", "protobuf encoding"},
	{"google.golang.org/protobuf/", "protobuf encoding"},
	{"github.com/gogo/", "protobuf encoding"},
	{"google.golang.org/grpc", "gRPC"},
	{"golang.org/x/net/http2", "gRPC"},
	{"modernc.org/", "SQLite (pure Go)"},
	{"github.com/jackc/", "PostgreSQL driver"},
	{"gorm.io/", "GORM"},
	{"database/sql", "GORM"},
	{"github.com/gin-gonic/", "HTTP (Gin, net/http)"},
	{"net/http", "HTTP (Gin, net/http)"},
	{"encoding/json", "JSON"},
	{"github.com/bytedance/", "JSON"},
	{"github.com/goccy/", "JSON"},
	{"crypto/", "crypto (payload codec, TLS, hashing)"},
	{"golang.org/x/crypto/", "crypto (payload codec, TLS, hashing)"},
	{"syscall", "system calls (network, disk)"},
	{"internal/poll", "system calls (network, disk)"},
	{"internal/runtime/syscall", "system calls (network, disk)"},
	{"runtime", "Go runtime (GC, scheduler, allocation)"},
	{"internal/runtime", "Go runtime (GC, scheduler, allocation)"},
}

func componentOf(function string) string {
	for _, c := range components {
		if strings.HasPrefix(function, c.prefix) {
			return c.name
		}
	}
	// Name the module: its path up to the package, without the function.
	if i := strings.LastIndexByte(function, '/'); i >= 0 {
		if j := strings.IndexByte(function[i:], '.'); j >= 0 {
			return function[:i+j]
		}
	}
	if j := strings.IndexByte(function, '.'); j >= 0 {
		return function[:j]
	}
	return function
}

// Components reads a CPU profile and ranks components by the CPU spent in
// their own functions (flat), largest first.
func Components(path string) ([]Share, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return nil, err
	}
	value := len(p.SampleType) - 1 // cpu nanoseconds
	byComponent := map[string]int64{}
	var total int64
	for _, s := range p.Sample {
		if len(s.Location) == 0 || len(s.Location[0].Line) == 0 {
			continue
		}
		fn := s.Location[0].Line[0].Function.Name
		byComponent[componentOf(fn)] += s.Value[value]
		total += s.Value[value]
	}
	var out []Share
	for c, v := range byComponent {
		out = append(out, Share{Component: c, Fraction: float64(v) / float64(max(total, 1))})
	}
	slices.SortFunc(out, func(a, b Share) int { return cmp.Compare(b.Fraction, a.Fraction) })
	return out, nil
}
