package rarchlog

import (
	"context"
	"errors"
	"flag"
	"strings"
	"sync"
	"testing"
	"time"

	"rarch-logging/rarchlog/internal/cgonoop"
)

// Run: go test -run '^$' -bench . -benchmem
//
// Every Info benchmark also reports "x-noop": its ns/op divided by the ns/op of an empty cgo
// call measured in the same run (BenchmarkCgoNoop), the ratio the README quotes.

// noopNs times empty cgo calls the way BenchmarkCgoNoop does (testing.Benchmark cannot run
// inside a benchmark): the best of five rounds of 2^20 calls.
var noopNs = sync.OnceValue(func() float64 {
	best := 0.0
	for range 5 {
		const n = 1 << 20
		start := time.Now()
		for range n {
			cgonoop.Call()
		}
		if ns := float64(time.Since(start).Nanoseconds()) / n; best == 0 || ns < best {
			best = ns
		}
	}
	return best
})

func reportRatio(b *testing.B) {
	if b.N > 1 {
		perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(perOp/noopNs(), "x-noop")
	}
}

// dropped counts entries the pipeline refused with ErrQueueFull: the receiver delivers about
// 10k entries/s and the overflow to disk is bounded, so a long run at 1M/s overflows both.
var dropped int

func check(b *testing.B, err error) {
	if errors.Is(err, ErrQueueFull) {
		dropped++
	} else if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCgoNoop is the baseline: one empty cgo call.
func BenchmarkCgoNoop(b *testing.B) {
	for b.Loop() {
		cgonoop.Call()
	}
}

// benchLogger logs to a live local receiver with the default pipeline settings (the queue
// overflows to the disk buffer under this load, as it would in production).
func benchLogger(b *testing.B) *Logger {
	r := startReceiverTB(b, nil)
	o := r.options(b)
	l, err := New("bench", "", o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		l.Flush(ctx)
		cancel()
		l.Close()
	})
	return l
}

// infoFields is the benchmarks' entry: three fields and a small context.
var infoFields = Fields{UserID: "user-1234", TenantID: "tenant-9", RequestID: "3f2c9a7e-1b4d-4c8e-9f00-123456789abc",
	Context: map[string]any{"order": 42, "sku": "A-17"}}

// BenchmarkInfo is the README's target: Info with three fields and a small context.
func BenchmarkInfo(b *testing.B) {
	l := benchLogger(b)
	f := infoFields
	noopNs()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		check(b, l.Info("order shipped", f))
	}
	reportRatio(b)
	b.ReportMetric(float64(dropped)/float64(b.N), "dropped/op")
	dropped = 0
}

// BenchmarkInfoPaced is BenchmarkInfo in bursts of 1,000 calls with a Flush between them
// (not timed), the way an application logs below the delivery rate: every call finds room in
// the queue, so it measures the call itself and not the disk writes of a saturated pipeline
// (BenchmarkInfo logs about 100x faster than the receiver accepts).
//
// The untimed flushes take as long as delivering every entry, so it runs only with a count:
// go test -run '^$' -bench InfoPaced -benchtime 100000x
func BenchmarkInfoPaced(b *testing.B) {
	if bt := flag.Lookup("test.benchtime"); bt == nil || !strings.HasSuffix(bt.Value.String(), "x") {
		b.Skip("run with -benchtime 100000x (each burst waits for its delivery, untimed)")
	}
	l := benchLogger(b)
	f := infoFields
	noopNs()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		check(b, l.Info("order shipped", f))
		if i%1000 == 999 {
			b.StopTimer()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := l.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			cancel()
			b.StartTimer()
		}
	}
	b.StopTimer()
	reportRatio(b)
}

// BenchmarkInfoStructContext: the same with a struct context (encoding/json).
func BenchmarkInfoStructContext(b *testing.B) {
	l := benchLogger(b)
	type ctx struct {
		Order int    `json:"order"`
		SKU   string `json:"sku"`
	}
	f := Fields{UserID: "user-1234", TenantID: "tenant-9", RequestID: "3f2c9a7e-1b4d-4c8e-9f00-123456789abc",
		Context: ctx{42, "A-17"}}
	noopNs()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		check(b, l.Info("order shipped", f))
	}
	reportRatio(b)
	b.ReportMetric(float64(dropped)/float64(b.N), "dropped/op")
	dropped = 0
}

// BenchmarkInfoMessageOnly: no fields (the library makes the request id and the time).
func BenchmarkInfoMessageOnly(b *testing.B) {
	l := benchLogger(b)
	noopNs()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		check(b, l.Info("order shipped"))
	}
	reportRatio(b)
	b.ReportMetric(float64(dropped)/float64(b.N), "dropped/op")
	dropped = 0
}

// BenchmarkInfoFiltered: below the level: one cgo call that returns at once.
func BenchmarkInfoFiltered(b *testing.B) {
	l := benchLogger(b)
	l.SetLevel(LevelError)
	f := Fields{UserID: "user-1234", TenantID: "tenant-9", RequestID: "r", Context: map[string]any{"order": 42}}
	noopNs()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		l.Info("order shipped", f)
	}
	reportRatio(b)
	b.ReportMetric(float64(dropped)/float64(b.N), "dropped/op")
	dropped = 0
}

// BenchmarkSlogInfo: the same entry through log/slog.
func BenchmarkSlogInfo(b *testing.B) {
	l := benchLogger(b)
	sl := NewSlog(l, nil).With("tenant_id", "tenant-9")
	noopNs()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		sl.Info("order shipped", "user_id", "user-1234", "request_id", "3f2c9a7e-1b4d-4c8e-9f00-123456789abc",
			"order", 42, "sku", "A-17")
	}
	reportRatio(b)
	b.ReportMetric(float64(dropped)/float64(b.N), "dropped/op")
	dropped = 0
}

// BenchmarkEncodeContext is the binding's own work per Info call besides the cgo call: the
// small map context of BenchmarkInfo, encoded into a pooled buffer.
func BenchmarkEncodeContext(b *testing.B) {
	ctx := map[string]any{"order": 42, "sku": "A-17"}
	b.ReportAllocs()
	for b.Loop() {
		sc := scratchPool.Get().(*scratch)
		sc.ctx, _ = appendContext(sc.ctx[:0], ctx)
		scratchPool.Put(sc)
	}
}
