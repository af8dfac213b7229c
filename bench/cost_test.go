package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/handoff-telehealth/handoff/bench"
)

// BenchmarkCost is what one waiting visit, one check-in and one transfer
// cost `handoff dev` (SQLite): the memory a waiting visit with its page
// open adds (RSS, live heap, goroutines and their stacks, as the slope
// from 1,000 to 3,000 waiting), and the CPU of a check-in at 50/s and of a
// transfer at 20/s, less what the process spends idle over the same time.
func BenchmarkCost(b *testing.B) {
	from, to := 1000, scale(3000, 2000)
	for i := 0; i < b.N; i++ {
		s := startLoadedSite(b, "cost-sqlite", "")
		ctx := context.Background()
		settled := func(n int) (bench.Usage, bench.Runtime) {
			require.NoError(b, s.clinic.Grow(ctx, n, 16))
			time.Sleep(5 * time.Second) // let check-in work drain
			rt, err := s.site.Runtime(ctx)
			require.NoError(b, err)
			return s.usage(b).handoff, rt
		}
		u1, r1 := settled(from)
		u2, r2 := settled(to)
		per := float64(to - from)
		rss := float64(u2.RSS-u1.RSS) / per / 1024
		b.Logf("per waiting visit, page open (%d → %d waiting): RSS %.1f KiB, live heap %.1f KiB, stacks %.1f KiB, goroutines %.2f",
			from, to, rss, float64(r2.HeapAlloc-r1.HeapAlloc)/per/1024, float64(r2.StackInuse-r1.StackInuse)/per/1024,
			float64(r2.Goroutines-r1.Goroutines)/per)
		b.ReportMetric(rss, "KiB/visit")

		idle, _ := s.idle(b, 5*time.Second)
		cpu := func(op func() bench.Result) (float64, bench.Result) {
			before := s.usage(b).handoff
			res := op()
			after := s.usage(b).handoff
			require.Zero(b, res.Errors, res.FirstOf)
			return 1000 * (after.CPUSeconds - before.CPUSeconds - idle*res.Elapsed.Seconds()) / float64(res.Seen.N), res
		}
		ci, res := cpu(func() bench.Result { return s.clinic.CheckIns(ctx, 50, scale(1000, 250)) })
		b.Logf("check-in at 50/s: %.1f ms of CPU each (idle %.3f cores taken off); POST → card %s", ci, idle, res.Seen)
		tr, res := cpu(func() bench.Result { return s.clinic.Transfers(ctx, 20, scale(400, 200)) })
		b.Logf("transfer at 20/s: %.1f ms of CPU each; POST → patient %s", tr, res.Seen)
		b.ReportMetric(ci, "cpu-ms/checkin")
		b.ReportMetric(tr, "cpu-ms/transfer")
	}
}
