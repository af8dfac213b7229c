package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/handoff-telehealth/handoff/devserver"
)

// Site is a `handoff dev` process, the whole service as a clinic would run
// it on one machine, measured from outside: its memory and CPU are its own,
// not the load generator's.
type Site struct {
	APIURL       string // http://host:port of the API
	TemporalAddr string // host:port of the embedded Temporal frontend
	PprofURL     string // http://host:port of its /debug/pprof/
	DSN          string // its app database ("" for the embedded SQLite file)
	cmd          *exec.Cmd
	exited       chan struct{}
}

// SiteOptions say which binary to run and against which database.
type SiteOptions struct {
	Bin     string    // a `handoff` binary built with the dev server
	DataDir string    // fresh directory for its Temporal and SQLite files
	DSN     string    // app database; empty: dev's SQLite file
	Log     io.Writer // its output; nil discards
}

// StartSite runs `handoff dev` on free ports with rate limits a load test
// needs (every request comes from one address), and waits until it is ready.
func StartSite(ctx context.Context, o SiteOptions) (*Site, error) {
	ports, err := devserver.FreePorts("127.0.0.1", 6)
	if err != nil {
		return nil, err
	}
	args := []string{"dev", "--data-dir", o.DataDir,
		"--api-port", strconv.Itoa(ports[0]), "--media-port", strconv.Itoa(ports[1]),
		"--temporal-port", strconv.Itoa(ports[2]), "--ui-port", strconv.Itoa(ports[3]),
		"--pprof-addr", fmt.Sprintf("127.0.0.1:%d", ports[4]), "--internal-port", strconv.Itoa(ports[5]),
		"--login-rate", "1000", "--checkin-rate", "100000", "--abandon-after", "0"}
	if o.DSN != "" {
		args = append(args, "--db", o.DSN)
	}
	cmd := exec.Command(o.Bin, args...)
	cmd.Env = os.Environ()
	if o.Log == nil {
		o.Log = io.Discard
	}
	cmd.Stdout, cmd.Stderr = o.Log, o.Log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Site{
		APIURL:       fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		TemporalAddr: fmt.Sprintf("127.0.0.1:%d", ports[2]),
		PprofURL:     fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/", ports[4]),
		DSN:          o.DSN,
		cmd:          cmd,
		exited:       make(chan struct{}),
	}
	go func() { _ = cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(3 * time.Minute) // a cold start creates the Temporal schema
	for {
		if resp, err := http.Get(s.APIURL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("handoff dev exited before it was ready")
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("handoff dev not ready after 3 minutes")
		}
	}
}

// PID is the dev process's id.
func (s *Site) PID() int { return s.cmd.Process.Pid }

// Stop ends the process as an operator would (SIGTERM), then for good.
func (s *Site) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// Profile records the process's CPU for d and writes it to path.
func (s *Site) Profile(ctx context.Context, d time.Duration, path string) error {
	resp, err := s.pprof(ctx, fmt.Sprintf("profile?seconds=%d", int(d.Seconds())))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Usage is what processes hold and have used.
type Usage struct {
	RSS        int64   // resident bytes
	CPUSeconds float64 // user + system so far
}

// ProcessUsage reads /proc for one process. RSS counts pages the process
// shares (libraries), which for a single Go binary is a few MB.
func ProcessUsage(pid int) (Usage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Usage{}, err
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	rssPages, _ := strconv.ParseInt(fields[21], 10, 64)
	return Usage{RSS: rssPages * int64(os.Getpagesize()), CPUSeconds: (utime + stime) / 100}, nil
}

// PostgresUsage sums every postgres process of the machine: memory as PSS
// (shared buffers split among the backends that touched them, so the sum is
// not inflated by sharing) and CPU. Other databases' work on the same server
// is counted too; the benchmark machine runs nothing else against it.
func PostgresUsage() (Usage, error) {
	var total Usage
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return total, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || !strings.HasPrefix(string(comm), "postgres") {
			continue
		}
		u, err := ProcessUsage(pid)
		if err != nil {
			continue // it ended meanwhile
		}
		total.CPUSeconds += u.CPUSeconds
		total.RSS += pss(pid, u.RSS)
	}
	return total, nil
}

// pss is the process's proportional set size, or its RSS where smaps_rollup
// cannot be read.
func pss(pid int, rss int64) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return rss
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return rss
}

// Runtime is what the Go runtime of the process holds, read after a
// collection: the live heap and the goroutines with their stacks.
type Runtime struct {
	HeapAlloc  int64 // bytes in live objects
	StackInuse int64 // bytes of goroutine stacks
	Goroutines int
}

// Runtime forces a collection in the process and reads its runtime figures
// from the pprof endpoints.
func (s *Site) Runtime(ctx context.Context) (Runtime, error) {
	var r Runtime
	heap, err := s.get(ctx, "heap?gc=1&debug=1")
	if err != nil {
		return r, err
	}
	for _, line := range strings.Split(heap, "\n") {
		if v, ok := strings.CutPrefix(line, "# HeapAlloc = "); ok {
			r.HeapAlloc, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "# Stack = "); ok {
			r.StackInuse, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	goroutines, err := s.get(ctx, "goroutine?debug=1")
	if err != nil {
		return r, err
	}
	first, _, _ := strings.Cut(goroutines, "\n")
	if _, err := fmt.Sscanf(first, "goroutine profile: total %d", &r.Goroutines); err != nil {
		return r, fmt.Errorf("goroutine profile: %q: %w", first, err)
	}
	return r, nil
}

func (s *Site) get(ctx context.Context, what string) (string, error) {
	resp, err := s.pprof(ctx, what)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// pprof asks the process's pprof endpoint for what; a response that is not
// 200 is an error.
func (s *Site) pprof(ctx context.Context, what string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", s.PprofURL+what, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %s", what, resp.Status)
	}
	return resp, nil
}
