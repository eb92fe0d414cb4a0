// Command gosdk sends the same burst of log records through the Go binding (rarchlog with
// Sink: SinkOTLP, http/protobuf) or through the OpenTelemetry Go SDK (sdk/log's BatchProcessor
// with otlploghttp), to an OpenTelemetry Collector, and measures the sending process. bench/gosdk.sh
// runs it, one process per row, against a Collector that exports to the local receiver.
//
//	gosdk run IMPL COUNT URL STATS_URL WAIT_S
//	  IMPL: binding | sdk (the SDK's default queue, 2,048) | sdk-queue (a queue of COUNT)
//	  URL: the Collector's OTLP/HTTP logs endpoint (http://127.0.0.1:PORT/v1/logs)
//	  STATS_URL: the receiver's /otlp/stats, whose "records" counts what the Collector exported
//	gosdk report RESULTS_FILE
//	  the table of the RESULT lines (medians over rounds) and issue 33's targets
//
// A row: COUNT records (64-byte body, user, tenant and request ids as attributes, a nested
// context map) logged in a tight loop from one goroutine, each call timed; then Flush (the
// binding) or ForceFlush (the SDK); then the receiver's count is polled every 2 ms until it
// reaches COUNT or stops moving for 2 s. It prints one RESULT line: records delivered, wall time
// from the first call until the receiver had its last record, the process's CPU (getrusage:
// every thread) from the first call until the flush returned, per record logged and per record
// delivered, the calls' p50/p99/max, and the peak RSS (ru_maxrss).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"

	"rarch-logging/rarchlog"
)

// The typical entry of bench/typical_entry.h: a 64-byte message, a user, a tenant and a
// nested context; the request id is made per record (the same way for both).
const (
	message = "payment authorised for order 8F3A-2291; gateway=stripe retries=0"
	user    = "user-7c9e6679"
	tenant  = "tenant-acme-eu"
	// The SDK's default queue (sdk/log's WithMaxQueueSize).
	sdkDefaultQueue = 2048
	// The export batch size of both: the SDK's WithExportMaxBatchSize and the binding's
	// batch_max_entries default.
	batchSize = 512
)

// bindingContext is the context as a Go user of the binding writes it.
var bindingContext = map[string]any{
	"order": map[string]any{
		"id": 829145, "items": 3,
		"total": map[string]any{"amount": 129.90, "currency": "EUR"},
	},
	"http":   map[string]any{"method": "POST", "path": "/api/v2/checkout", "status": 201},
	"client": map[string]any{"ip": "10.1.2.3", "app": "web-74"},
	"flags":  []any{"a", "b"},
}

// sdkContext is the same context as an OpenTelemetry attribute value (a map of maps).
var sdkContext = attribute.MapValue(
	attribute.Map("order",
		attribute.Int("id", 829145), attribute.Int("items", 3),
		attribute.Map("total", attribute.Float64("amount", 129.90), attribute.String("currency", "EUR"))),
	attribute.Map("http",
		attribute.String("method", "POST"), attribute.String("path", "/api/v2/checkout"),
		attribute.Int("status", 201)),
	attribute.Map("client", attribute.String("ip", "10.1.2.3"), attribute.String("app", "web-74")),
	attribute.Slice("flags", attribute.StringValue("a"), attribute.StringValue("b")),
)

// requestID is a distinct 36-character id per record, UUID-shaped (the binding's library makes
// a UUID v4 when none is given; both get this one instead, so the inputs are the same).
func requestID(i int) string {
	const hexDigits = "0123456789abcdef"
	var b [36]byte
	copy(b[:], "00000000-0000-4000-8000-000000000000")
	n := uint64(i)
	for p := 35; p >= 24 && n > 0; p-- {
		b[p] = hexDigits[n&15]
		n >>= 4
	}
	return string(b[:])
}

type usage struct{ cpuNs int64 }

func rusage() (usage, int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		die("getrusage: %v", err)
	}
	return usage{ru.Utime.Nano() + ru.Stime.Nano()}, ru.Maxrss // Maxrss: KiB on Linux
}

func die(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "gosdk: "+f+"\n", a...)
	os.Exit(1)
}

// records returns the receiver's count of OTLP records (GET STATS_URL, field "records").
func records(client *http.Client, statsURL string) (int64, error) {
	resp, err := client.Get(statsURL)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var s struct {
		Records int64 `json:"records"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return 0, err
	}
	return s.Records, nil
}

// sender is one implementation under test.
type sender interface {
	log(i int) error
	flush(ctx context.Context) error
	close(ctx context.Context) error
	extra() string // its own counters, for the RESULT line
}

type bindingSender struct {
	lg *rarchlog.Logger
}

// newBinding opens the binding's logger with its defaults and sink=otlp; GOSDK_OPTS
// ("k=v,k2=v2", the library's option names) sets more options, as RBENCH_OPTS does for rbench.
func newBinding(url, bufDir string) *bindingSender {
	zero := 0
	raw := map[string]string{}
	for _, kv := range strings.Split(os.Getenv("GOSDK_OPTS"), ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok {
			raw[k] = v
		}
	}
	lg, err := rarchlog.New("bench", "gosdk", rarchlog.Options{
		Sink: rarchlog.SinkOTLP, URL: url, BufferDir: bufDir, CloseTimeoutMs: &zero, Raw: raw,
	})
	if err != nil {
		die("rarchlog.New: %v", err)
	}
	return &bindingSender{lg}
}

func (b *bindingSender) log(i int) error {
	return b.lg.Info(message, rarchlog.Fields{UserID: user, TenantID: tenant, RequestID: requestID(i), Context: bindingContext})
}
func (b *bindingSender) flush(ctx context.Context) error { return b.lg.Flush(ctx) }
func (b *bindingSender) close(context.Context) error     { return b.lg.Close() }
func (b *bindingSender) extra() string {
	s, err := b.lg.Stats()
	if err != nil {
		return "stats=error"
	}
	return fmt.Sprintf("lib_logged=%d lib_delivered=%d lib_buffered=%d lib_replayed=%d lib_dropped=%d",
		s.Logged, s.Delivered, s.Buffered, s.Replayed, s.DroppedQueueFull+s.DroppedBufferCap+s.DroppedIO)
}

type sdkSender struct {
	provider *sdklog.LoggerProvider
	logger   otellog.Logger
}

func newSDK(url string, queue int) *sdkSender {
	ctx := context.Background()
	exp, err := otlploghttp.New(ctx, otlploghttp.WithEndpointURL(url))
	if err != nil {
		die("otlploghttp.New: %v", err)
	}
	proc := sdklog.NewBatchProcessor(exp, sdklog.WithMaxQueueSize(queue), sdklog.WithExportMaxBatchSize(batchSize))
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", "bench")))
	if err != nil {
		die("resource: %v", err)
	}
	p := sdklog.NewLoggerProvider(sdklog.WithProcessor(proc), sdklog.WithResource(res))
	return &sdkSender{provider: p, logger: p.Logger("gosdk")}
}

func (s *sdkSender) log(i int) error {
	var r otellog.Record
	now := time.Now()
	r.SetTimestamp(now)
	r.SetObservedTimestamp(now)
	r.SetSeverity(otellog.SeverityInfo)
	r.SetSeverityText("INFO")
	r.SetBody(attribute.StringValue(message))
	r.AddAttributes(
		attribute.String("user_id", user),
		attribute.String("tenant_id", tenant),
		attribute.String("request_id", requestID(i)),
		attribute.KeyValue{Key: "context", Value: sdkContext},
	)
	s.logger.Emit(context.Background(), r)
	return nil
}
func (s *sdkSender) flush(ctx context.Context) error { return s.provider.ForceFlush(ctx) }
func (s *sdkSender) close(ctx context.Context) error { return s.provider.Shutdown(ctx) }
func (s *sdkSender) extra() string                   { return "" }

func pct(sorted []uint32, p float64) uint32 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

func run(args []string) {
	if len(args) != 5 {
		die("usage: gosdk run IMPL COUNT URL STATS_URL WAIT_S")
	}
	impl, url, statsURL := args[0], args[2], args[3]
	count, err := strconv.Atoi(args[1])
	if err != nil || count <= 0 {
		die("COUNT: %q", args[1])
	}
	waitS, err := strconv.ParseFloat(args[4], 64)
	if err != nil {
		die("WAIT_S: %q", args[4])
	}
	var s sender
	queue := 0
	switch impl {
	case "binding":
		dir, err := os.MkdirTemp("", "gosdk-buf.")
		if err != nil {
			die("%v", err)
		}
		defer os.RemoveAll(dir)
		s = newBinding(url, dir)
	case "sdk":
		queue = sdkDefaultQueue
		s = newSDK(url, queue)
	case "sdk-queue":
		queue = count
		s = newSDK(url, queue)
	default:
		die("IMPL: binding, sdk or sdk-queue; not %q", impl)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	if n, err := records(client, statsURL); err != nil || n != 0 {
		die("%s says records=%d (%v) before the run (expected 0)", statsURL, n, err)
	}
	lat := make([]uint32, count) // each call's ns
	errs := 0
	runtime.GC()
	u0, _ := rusage()
	t0 := time.Now()
	for i := range count {
		c0 := time.Now()
		if s.log(i) != nil {
			errs++
		}
		d := time.Since(c0)
		if d > 1<<32-1 {
			d = 1<<32 - 1
		}
		lat[i] = uint32(d)
	}
	tLog := time.Since(t0)
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Second)
	flushErr := s.flush(ctx)
	cancel()
	tFlush := time.Since(t0)
	u1, _ := rusage()
	// The receiver's count: until COUNT, or until it has not moved for 2 s (the SDK's dropped
	// records never come), or WAIT_S.
	var seen int64
	tSeen := tFlush
	lastMove := time.Now()
	deadline := time.Now().Add(time.Duration(waitS * float64(time.Second)))
	for {
		n, err := records(client, statsURL)
		if err == nil && n != seen {
			seen, tSeen, lastMove = n, time.Since(t0), time.Now()
		}
		if seen >= int64(count) || time.Since(lastMove) > 2*time.Second || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	extra := s.extra()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	s.close(ctx)
	cancel()
	_, maxrss := rusage()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	slices.Sort(lat)
	cpu := float64(u1.cpuNs - u0.cpuNs)
	perDelivered := 0.0
	if seen > 0 {
		perDelivered = cpu / 1e3 / float64(seen)
	}
	flushFailed := 0
	if flushErr != nil {
		flushFailed = 1
		fmt.Fprintf(os.Stderr, "gosdk: %s: flush: %v\n", impl, flushErr)
	}
	fmt.Printf("RESULT bench=gosdk impl=%s queue=%d count=%d errors=%d flush=%d delivered=%d dropped=%d "+
		"log_ms=%.1f flush_ms=%.1f e2e_ms=%.1f e2e_rate=%.0f cpu_ms=%.1f cpu_us_per_record=%.2f "+
		"cpu_us_per_delivered=%.2f p50_ns=%d p99_ns=%d max_ns=%d maxrss_kib=%d go_sys_kib=%d "+
		"go_heap_sys_kib=%d %s\n",
		impl, queue, count, errs, flushFailed, seen, int64(count)-seen,
		tLog.Seconds()*1e3, tFlush.Seconds()*1e3, tSeen.Seconds()*1e3, float64(seen)/tSeen.Seconds(),
		cpu/1e6, cpu/1e3/float64(count), perDelivered,
		pct(lat, 0.5), pct(lat, 0.99), lat[len(lat)-1], maxrss, ms.Sys/1024, ms.HeapSys/1024, extra)
}

// ---- report ---------------------------------------------------------------------------------

type row struct {
	impl string
	kv   map[string]string
}

func (r row) f(k string) float64 {
	v, err := strconv.ParseFloat(r.kv[k], 64)
	if err != nil {
		return 0
	}
	return v
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func report(path string) {
	f, err := os.Open(path)
	if err != nil {
		die("%v", err)
	}
	defer f.Close()
	by := map[string][]row{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "RESULT bench=gosdk ") {
			continue
		}
		kv := map[string]string{}
		for _, w := range strings.Fields(line)[1:] {
			if k, v, ok := strings.Cut(w, "="); ok {
				kv[k] = v
			}
		}
		by[kv["impl"]] = append(by[kv["impl"]], row{kv["impl"], kv})
	}
	med := func(impl, k string) float64 {
		var xs []float64
		for _, r := range by[impl] {
			xs = append(xs, r.f(k))
		}
		return median(xs)
	}
	rng := func(impl, k string, scale float64, prec int) string {
		var xs []float64
		for _, r := range by[impl] {
			xs = append(xs, r.f(k)*scale)
		}
		if len(xs) == 0 {
			return "-"
		}
		lo, hi := slices.Min(xs), slices.Max(xs)
		m := median(xs)
		if len(xs) == 1 {
			return strconv.FormatFloat(m, 'f', prec, 64)
		}
		return fmt.Sprintf("%s (%s–%s)", strconv.FormatFloat(m, 'f', prec, 64),
			strconv.FormatFloat(lo, 'f', prec, 64), strconv.FormatFloat(hi, 'f', prec, 64))
	}
	deliveredList := func(impl string) string {
		var s []string
		for _, r := range by[impl] {
			s = append(s, r.kv["delivered"])
		}
		return strings.Join(s, ", ")
	}
	w := os.Stdout
	names := map[string]string{
		"binding":   "Go binding (`rarchlog`, `Sink: SinkOTLP`, http/protobuf)",
		"sdk":       "OTel Go SDK, default queue (2,048)",
		"sdk-queue": "OTel Go SDK, queue of all records",
	}
	fmt.Fprintln(w, "| sender | rounds | delivered (each round) | dropped (median) | wall time to all delivered, s | delivered/s | CPU per record logged, µs | CPU per record delivered, µs | call p50, µs | call p99, µs | peak RSS, MiB |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, impl := range []string{"binding", "sdk", "sdk-queue"} {
		if len(by[impl]) == 0 {
			continue
		}
		fmt.Fprintf(w, "| %s | %d | %s | %.0f | %s | %s | %s | %s | %s | %s | %s |\n",
			names[impl], len(by[impl]), deliveredList(impl), med(impl, "dropped"),
			rng(impl, "e2e_ms", 1e-3, 2), rng(impl, "e2e_rate", 1, 0),
			rng(impl, "cpu_us_per_record", 1, 1), rng(impl, "cpu_us_per_delivered", 1, 1),
			rng(impl, "p50_ns", 1e-3, 2), rng(impl, "p99_ns", 1e-3, 1),
			rng(impl, "maxrss_kib", 1.0/1024, 1))
	}
	if len(by["binding"]) == 0 || len(by["sdk-queue"]) == 0 {
		return
	}
	mark := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "MISS"
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target (issue 33) | measured (medians) | mark |")
	fmt.Fprintln(w, "|---|---|---|")
	rate := med("binding", "e2e_rate") / med("sdk-queue", "e2e_rate")
	fmt.Fprintf(w, "| binding's rate >= 2x the SDK's (queue of all records) | %.0f / %.0f records/s = %.2fx | %s |\n",
		med("binding", "e2e_rate"), med("sdk-queue", "e2e_rate"), rate, mark(rate >= 2))
	cpu := med("binding", "cpu_us_per_record") / med("sdk-queue", "cpu_us_per_record")
	fmt.Fprintf(w, "| binding's CPU per record <= 0.3x the SDK's | %.1f / %.1f µs = %.2fx | %s |\n",
		med("binding", "cpu_us_per_record"), med("sdk-queue", "cpu_us_per_record"), cpu, mark(cpu <= 0.3))
	drops := 0.0
	for _, r := range by["binding"] {
		drops += r.f("dropped")
	}
	fmt.Fprintf(w, "| the binding never drops a record | %.0f dropped in %d rounds (the SDK's default queue: %.0f of %s, median) | %s |\n",
		drops, len(by["binding"]), med("sdk", "dropped"), by["binding"][0].kv["count"], mark(drops == 0))
	var maxRSS float64
	for _, r := range by["binding"] {
		maxRSS = max(maxRSS, r.f("maxrss_kib")/1024)
	}
	fmt.Fprintf(w, "| binding's peak RSS for the burst <= 48 MiB | %.1f MiB (the largest round; SDK with its queue raised %.1f MiB, median) | %s |\n",
		maxRSS, med("sdk-queue", "maxrss_kib")/1024, mark(maxRSS <= 48))
}

func main() {
	if len(os.Args) < 2 {
		die("usage: gosdk run ... | gosdk report FILE")
	}
	switch os.Args[1] {
	case "run":
		run(os.Args[2:])
	case "report":
		if len(os.Args) != 3 {
			die("usage: gosdk report RESULTS_FILE")
		}
		report(os.Args[2])
	default:
		die("unknown command %q", os.Args[1])
	}
}
