package ipc

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkDelegate measures delegate round trips over real socket pairs:
// clients workers (one Client and one Conn each), each driven by callers
// goroutines, with a small payload echoed by the handler. It reports the
// total round trips per second and the p50 and p99 latency of one call.
//
//	go test -run='^$' -bench=Delegate -benchtime=200000x ./internal/ipc/
func BenchmarkDelegate(b *testing.B) {
	for _, clients := range []int{2, 8} {
		for _, callers := range []int{1, 8} {
			b.Run(fmt.Sprintf("clients=%d/callers=%d", clients, callers), func(b *testing.B) {
				benchDelegate(b, clients, callers)
			})
		}
	}
}

func benchDelegate(b *testing.B, clients, callers int) {
	h := newTestHandler()
	cls := make([]*Client, clients)
	for i := range cls {
		_, cls[i] = connect(b, h, ConnOptions{Logger: discardLogger()})
	}
	payload := json.RawMessage(`{"key":"session:1234","op":"get"}`)
	var next atomic.Int64
	lat := make([][]time.Duration, clients*callers)
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for g := range lat {
		cl := cls[g%clients]
		wg.Go(func() {
			ds := make([]time.Duration, 0, b.N/len(lat)+1)
			ctx := context.Background()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if _, err := cl.Delegate(ctx, "echo", payload); err != nil {
					b.Error(err)
					return
				}
				ds = append(ds, time.Since(t0))
			}
			lat[g] = ds
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "rt/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(len(all))/1e3, "cpu-µs/op")
}

// cpuTime returns the user and system CPU time this process has used, so
// that the benchmark also reports the cost of a round trip for both sides
// together, which is less sensitive to other load on the machine than the
// wall-clock rate.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
