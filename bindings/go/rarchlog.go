// Package rarchlog is the Go binding of rarch-logging, a native client for the rarch logging
// API. A Logger sends entries through the library's pipeline (a queue, a sender thread with its event loop, a disk
// buffer that survives outages); NewHandler puts it behind log/slog.
//
//	lg, err := rarchlog.New("billing", "invoices", rarchlog.Options{BufferDir: "/var/lib/billing/log"})
//	if err != nil { ... }
//	defer lg.Close()
//	lg.Info("invoice sent", rarchlog.Fields{UserID: "u-17", Context: map[string]any{"invoice": 42}})
//	lg.Flush(ctx) // before exit: wait until delivered
//
// A Logger is safe for use by any number of goroutines. Each entry costs one cgo call
// (rarch_log_n with pointer+length strings: no C copies of Go strings are made).
package rarchlog

/*
#include <stdlib.h>
#include <rarch_logging.h>

// Every call that can fail is wrapped so that rarch_last_error is read in the same C call,
// hence on the same OS thread as the failing call (its message is per thread).
typedef struct { int status; char *err; } rg_result;

static char *rg_last_error(void) {
	size_t n = rarch_last_error(NULL, 0);
	char *buf = malloc(n + 1);
	if (buf != NULL) rarch_last_error(buf, n + 1);
	return buf;
}

static rg_result rg_done(rarch_status st) {
	rg_result r = { (int)st, NULL };
	if (st != RARCH_OK) r.err = rg_last_error();
	return r;
}

typedef struct { rarch_options *opts; char *err; } rg_options_result;

static rg_options_result rg_options_new(void) {
	rg_options_result r = { rarch_options_new(), NULL };
	if (r.opts == NULL) r.err = rg_last_error();
	return r;
}

static rg_result rg_options_set(rarch_options *o, const char *k, const char *v) {
	return rg_done(rarch_options_set(o, k, v));
}

typedef struct { rarch_logger *logger; int status; char *err; } rg_logger_result;

static rg_logger_result rg_logger_new(const char *service, const char *name, const rarch_options *o) {
	rg_logger_result r = { NULL, 0, NULL };
	r.status = (int)rarch_logger_open(service, name, o, &r.logger);
	if (r.status != RARCH_OK) r.err = rg_last_error();
	return r;
}

// The strings are Go memory passed as direct arguments (allowed: string bytes hold no Go
// pointers); the rarch_entry holding them is built here, on the C stack. A NULL pointer is
// an absent field; the message is never absent.
static rg_result rg_log(rarch_logger *lg, int level,
		const char *msg, size_t msg_len,
		const char *uid, size_t uid_len,
		const char *tid, size_t tid_len,
		const char *rid, size_t rid_len,
		const char *ctx, size_t ctx_len,
		const char *ts, size_t ts_len,
		const char *traceparent) {
	rarch_entry e;
	e.message.ptr = msg != NULL ? msg : "";
	e.message.len = msg_len;
	e.user_id.ptr = uid; e.user_id.len = uid_len;
	e.tenant_id.ptr = tid; e.tenant_id.len = tid_len;
	e.request_id.ptr = rid; e.request_id.len = rid_len;
	e.context_json.ptr = ctx; e.context_json.len = ctx_len;
	e.client_log_datetime.ptr = ts; e.client_log_datetime.len = ts_len;
	if (traceparent != NULL) return rg_done(rarch_log_traced(lg, level, &e, traceparent));
	return rg_done(rarch_log_n(lg, level, &e));
}

static rg_result rg_flush(rarch_logger *lg, uint32_t ms) { return rg_done(rarch_flush(lg, ms)); }
static rg_result rg_set_level(rarch_logger *lg, int level) { return rg_done(rarch_set_level(lg, level)); }

static rg_result rg_stats(rarch_logger *lg, rarch_statistics *out) {
	out->size = sizeof(rarch_statistics);
	return rg_done(rarch_stats(lg, out));
}
*/
import "C"

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"go.opentelemetry.io/otel/trace"
)

// Version is the library's version (rarch_version), e.g. "0.1.0".
func Version() string { return C.GoString(C.rarch_version()) }

// takeErr converts and frees a malloc'd message.
func takeErr(p *C.char) string {
	if p == nil {
		return ""
	}
	s := C.GoString(p)
	C.free(unsafe.Pointer(p))
	return s
}

func resultErr(op string, r C.rg_result) error {
	if r.status == C.RARCH_OK {
		return nil
	}
	return newError(op, r.status, takeErr(r.err))
}

// Logger sends log entries of one service and logger name. Make it with New; call Close when
// done. All methods are safe for concurrent use; after Close they return ErrClosed.
type Logger struct {
	// mu guards ptr: every call holds it for reading, Close for writing, so rarch_logger_free
	// is the last call on the pointer, as the C API requires.
	mu      sync.RWMutex
	ptr     *C.rarch_logger
	level   atomic.Int32 // the logger's level, mirrored for slog's Enabled
	service string
	name    string
	events  eventPoller // Events' goroutine, if started
}

// New makes a logger for service (required: one path component, e.g. "billing") and
// loggerName (empty: the service name). Options left unset come from the environment
// variables and the library's defaults.
func New(service, loggerName string, opts Options) (*Logger, error) {
	// A C string cannot hold NUL, and the library would report bad UTF-8 with no status:
	// check both here so the error is exact.
	for _, s := range [...]string{service, loggerName} {
		if strings.IndexByte(s, 0) >= 0 {
			return nil, &Error{Status: ErrInvalidArgument.(Status), Op: "New", Msg: fmt.Sprintf("%q contains a NUL byte", s)}
		}
		if !utf8.ValidString(s) {
			return nil, &Error{Status: ErrInvalidUTF8.(Status), Op: "New", Msg: fmt.Sprintf("%q is not valid UTF-8", s)}
		}
	}
	pairs := opts.pairs()
	seen := make(map[string]bool, len(pairs))
	for _, p := range pairs {
		if seen[p.key] {
			return nil, &Error{Status: ErrConfig.(Status), Op: "New",
				Msg: fmt.Sprintf("option '%s' is set twice (by a field and in Raw)", p.key)}
		}
		seen[p.key] = true
	}
	or := C.rg_options_new()
	if or.opts == nil {
		return nil, newError("New", C.RARCH_ERR_PANIC, takeErr(or.err))
	}
	defer C.rarch_options_free(or.opts)
	for _, p := range pairs {
		if strings.IndexByte(p.key, 0) >= 0 || strings.IndexByte(p.value, 0) >= 0 {
			return nil, &Error{Status: ErrConfig.(Status), Op: "New", Msg: fmt.Sprintf("option '%s': contains a NUL byte", p.key)}
		}
		k, v := C.CString(p.key), C.CString(p.value)
		r := C.rg_options_set(or.opts, k, v)
		C.free(unsafe.Pointer(k))
		C.free(unsafe.Pointer(v))
		if err := resultErr("New", r); err != nil {
			return nil, err
		}
	}
	cs := C.CString(service)
	defer C.free(unsafe.Pointer(cs))
	var cn *C.char
	if loggerName != "" {
		cn = C.CString(loggerName)
		defer C.free(unsafe.Pointer(cn))
	}
	lr := C.rg_logger_new(cs, cn, or.opts)
	if lr.logger == nil {
		msg := takeErr(lr.err)
		return nil, &Error{Status: Status(lr.status), Op: "New", Msg: msg}
	}
	if loggerName == "" {
		loggerName = service
	}
	l := &Logger{ptr: lr.logger, service: service, name: loggerName}
	l.level.Store(int32(levelFromC(int(C.rarch_get_level(lr.logger)))))
	open.Lock()
	open.loggers[l] = struct{}{}
	open.Unlock()
	return l, nil
}

// open is every Logger not yet closed, for Exit.
var open = struct {
	sync.Mutex
	loggers map[*Logger]struct{}
}{loggers: map[*Logger]struct{}{}}

// Exit closes every open Logger (all at once: each delivers within its close_timeout_ms and
// writes the rest to the disk buffer), then calls os.Exit(code). Use it instead of os.Exit
// and log.Fatal, which end the process without running deferred calls or the C library's exit
// handlers: the entries still in memory would be lost. A return from main does not run the C
// library's exit handlers either: Close the loggers (defer) before it.
func Exit(code int) {
	open.Lock()
	ls := make([]*Logger, 0, len(open.loggers))
	for l := range open.loggers {
		ls = append(ls, l)
	}
	open.Unlock()
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go func(l *Logger) {
			defer wg.Done()
			_ = l.Close()
		}(l)
	}
	wg.Wait()
	os.Exit(code)
}

// Service is the service name the logger was made with.
func (l *Logger) Service() string { return l.service }

// Name is the logger name (the service name if none was given).
func (l *Logger) Name() string { return l.name }

// Fields are the optional parts of an entry. A zero field is absent and gets the protocol's
// default: user_id and tenant_id null, request_id a fresh UUID v4, context {}, the time of
// the call.
type Fields struct {
	UserID    string
	TenantID  string
	RequestID string
	// Context is marshalled to a JSON object: a map, a struct, or json.RawMessage holding an
	// object (sent as it is). Maps with string keys and values of basic types are encoded
	// without reflection. nil (or a value marshalling to null) means {}. Anything else is
	// ErrInvalidJSON.
	Context any
	// Time is the client time (client_log_datetime), sent in UTC with microseconds.
	Time time.Time
}

// Debug logs at DEBUG. f is optional; if several are given, later non-zero fields win.
func (l *Logger) Debug(msg string, f ...Fields) error { return l.log("Debug", LevelDebug, msg, f) }

// Info logs at INFO.
func (l *Logger) Info(msg string, f ...Fields) error { return l.log("Info", LevelInfo, msg, f) }

// Warn logs at WARN.
func (l *Logger) Warn(msg string, f ...Fields) error { return l.log("Warn", LevelWarn, msg, f) }

// Error logs at ERROR.
func (l *Logger) Error(msg string, f ...Fields) error { return l.log("Error", LevelError, msg, f) }

// Fatal logs at FATAL. It returns once the entry and every entry logged before it are safe
// from a crash (in threaded mode: in the crash journal, never a wait on the network), so a
// process that crashes right after loses none of them. Unlike log.Fatal it does not exit: call
// Exit(code) to end the process with every logger closed.
func (l *Logger) Fatal(msg string, f ...Fields) error { return l.log("Fatal", LevelFatal, msg, f) }

// Log logs at the given level.
func (l *Logger) Log(level Level, msg string, f ...Fields) error { return l.log("Log", level, msg, f) }

// LogContext logs at the given level with the trace context of ctx: when ctx carries a valid
// OpenTelemetry span context (trace.SpanContextFromContext), the entry carries its trace id,
// span id and flags (rarch_log_traced): an OTLP record's traceId, spanId and flags, or the
// rarch body's trace_id, span_id and trace_flags. Without one it is Log.
func (l *Logger) LogContext(ctx context.Context, level Level, msg string, f ...Fields) error {
	return l.logSpan("LogContext", level, msg, f, trace.SpanContextFromContext(ctx))
}

func mergeFields(f []Fields) Fields {
	m := f[0]
	for _, g := range f[1:] {
		if g.UserID != "" {
			m.UserID = g.UserID
		}
		if g.TenantID != "" {
			m.TenantID = g.TenantID
		}
		if g.RequestID != "" {
			m.RequestID = g.RequestID
		}
		if g.Context != nil {
			m.Context = g.Context
		}
		if !g.Time.IsZero() {
			m.Time = g.Time
		}
	}
	return m
}

// scratch holds the encoded context and time of one call; pooled, so a call allocates
// nothing for them. The library copies what it keeps, so the bytes are free after the call.
type scratch struct {
	ctx []byte
	ts  [40]byte
	// A traceparent, NUL-terminated.
	tp [56]byte
}

var scratchPool = sync.Pool{New: func() any { return &scratch{ctx: make([]byte, 0, 256)} }}

// strArg gives a string as the (pointer, length) pair of a rarch_str: nil for an absent one.
func strArg(s string) (*C.char, C.size_t) {
	if s == "" {
		return nil, 0
	}
	return (*C.char)(unsafe.Pointer(unsafe.StringData(s))), C.size_t(len(s))
}

func bytesArg(b []byte) (*C.char, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.char)(unsafe.Pointer(unsafe.SliceData(b))), C.size_t(len(b))
}

func (l *Logger) log(op string, level Level, msg string, fs []Fields) error {
	return l.logSpan(op, level, msg, fs, trace.SpanContext{})
}

// logSpan is log with a span context (none when it is not valid).
func (l *Logger) logSpan(op string, level Level, msg string, fs []Fields, span trace.SpanContext) error {
	var f Fields
	switch len(fs) {
	case 0:
	case 1:
		f = fs[0]
	default:
		f = mergeFields(fs)
	}
	return l.send(op, level, msg, f.UserID, f.TenantID, f.RequestID, f.Context, f.Time, nil, span)
}

// appendTraceparent writes the W3C traceparent of a valid span context, NUL-terminated.
func appendTraceparent(dst *[56]byte, span trace.SpanContext) *C.char {
	const hexDigits = "0123456789abcdef"
	b := dst[:0]
	b = append(b, "00-"...)
	tid, sid := span.TraceID(), span.SpanID()
	for _, x := range tid {
		b = append(b, hexDigits[x>>4], hexDigits[x&15])
	}
	b = append(b, '-')
	for _, x := range sid {
		b = append(b, hexDigits[x>>4], hexDigits[x&15])
	}
	fl := byte(span.TraceFlags())
	b = append(b, '-', hexDigits[fl>>4], hexDigits[fl&15], 0)
	return (*C.char)(unsafe.Pointer(&dst[0]))
}

// send makes the one cgo call of an entry. rawCtx, if not nil, is already JSON (slog's path);
// span, if valid, is the entry's trace context.
func (l *Logger) send(op string, level Level, msg, uid, tid, rid string, ctx any, t time.Time, rawCtx []byte, span trace.SpanContext) error {
	if level >= LevelDebug && level < Level(l.level.Load()) {
		// Below the level: skip the encoding, but still make the call so that the library
		// counts the entry as filtered (Stats().Filtered).
		ctx, t, rawCtx, uid, tid, rid = nil, time.Time{}, nil, "", "", ""
		span = trace.SpanContext{}
	}
	var sc *scratch
	var ctxJSON, ts []byte
	var tpArg *C.char
	traced := span.IsValid()
	if ctx != nil || !t.IsZero() || traced {
		sc = scratchPool.Get().(*scratch)
		defer scratchPool.Put(sc)
		if traced {
			tpArg = appendTraceparent(&sc.tp, span)
		}
		if ctx != nil {
			var err error
			sc.ctx, err = appendContext(sc.ctx[:0], ctx)
			if err != nil {
				return &Error{Status: ErrInvalidJSON.(Status), Op: op, Msg: "Context", err: err}
			}
			ctxJSON = sc.ctx
		}
		if !t.IsZero() {
			ts = t.UTC().AppendFormat(sc.ts[:0], "2006-01-02T15:04:05.000000Z07:00")
		}
	}
	if rawCtx != nil {
		ctxJSON = rawCtx
	}
	mp, ml := strArg(msg)
	up, ul := strArg(uid)
	tp, tl := strArg(tid)
	rp, rl := strArg(rid)
	cp, cl := bytesArg(ctxJSON)
	sp, sl := bytesArg(ts)

	l.mu.RLock()
	if l.ptr == nil {
		l.mu.RUnlock()
		return closedError(op)
	}
	r := C.rg_log(l.ptr, C.int(level.c()), mp, ml, up, ul, tp, tl, rp, rl, cp, cl, sp, sl, tpArg)
	l.mu.RUnlock()
	if r.status != C.RARCH_OK {
		return newError(op, r.status, takeErr(r.err))
	}
	return nil
}

// SetLevel sets the logger's level: entries below it are dropped before any work (and
// counted in Stats().Filtered).
func (l *Logger) SetLevel(level Level) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.ptr == nil {
		return closedError("SetLevel")
	}
	if err := resultErr("SetLevel", C.rg_set_level(l.ptr, C.int(level.c()))); err != nil {
		return err
	}
	l.level.Store(int32(level))
	return nil
}

// Level is the logger's current level.
func (l *Logger) Level() Level { return Level(l.level.Load()) }

// Enabled reports whether an entry at level would be sent (false after Close).
func (l *Logger) Enabled(level Level) bool {
	return level >= Level(l.level.Load()) && level <= LevelFatal
}

// flushSlice bounds one rarch_flush call when the context has no deadline, so that a
// cancellation is seen within about this long.
const flushSlice = 100 * time.Millisecond

// Flush waits until every entry logged before the call is delivered and the disk buffer is
// replayed. It honours ctx: it gives up at ctx's deadline (the error matches both
// ErrTimedOut and context.DeadlineExceeded) or when ctx is cancelled (context.Canceled).
// Without a deadline it waits until delivered or cancelled. Nothing is dropped either way.
func (l *Logger) Flush(ctx context.Context) error {
	defer l.events.poke() // Events: report what the flush did at once
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.ptr == nil {
		return closedError("Flush")
	}
	deadline, hasDeadline := ctx.Deadline()
	for {
		slice := flushSlice
		if hasDeadline {
			slice = min(time.Until(deadline), flushSlice)
			if slice < 0 {
				slice = 0
			}
		}
		if ctx.Err() != nil {
			slice = 0 // one last look: already delivered counts as success
		}
		r := C.rg_flush(l.ptr, C.uint32_t((slice+time.Millisecond-1)/time.Millisecond))
		if r.status == C.RARCH_OK {
			return nil
		}
		msg := takeErr(r.err)
		if r.status != C.RARCH_ERR_TIMED_OUT {
			return newError("Flush", r.status, msg)
		}
		if err := ctx.Err(); err != nil || (hasDeadline && !time.Now().Before(deadline)) {
			if err == nil {
				err = context.DeadlineExceeded
			}
			return &Error{Status: ErrTimedOut.(Status), Op: "Flush", Msg: msg, err: err}
		}
	}
}

// Close delivers what it can within close_timeout_ms, writes the rest to the disk buffer
// (replayed by the next logger of the service) and frees the logger. It waits for calls in
// progress on other goroutines, and closes the Events channel. Calling it again does nothing
// and returns nil.
func (l *Logger) Close() error {
	l.events.shutdown() // before the lock: the poller's last poll takes it
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ptr != nil {
		C.rarch_logger_free(l.ptr)
		l.ptr = nil
		open.Lock()
		delete(open.loggers, l)
		open.Unlock()
		l.level.Store(int32(LevelFatal + 1)) // Enabled is false from now on
	}
	return nil
}

// Stats are the counters of the logger's pipeline (rarch_statistics). Loggers made with the
// same options share a pipeline, hence these counters.
type Stats struct {
	Logged           uint64 // entries taken by Log (after the level filter)
	Filtered         uint64 // entries below the logger's level
	Delivered        uint64 // entries the server accepted (fresh and replayed)
	FailedAttempts   uint64 // requests that did not deliver
	Retried          uint64 // in-memory retries
	Buffered         uint64 // entries written to the buffer file
	Replayed         uint64 // entries delivered from the buffer file
	Rejected         uint64 // entries refused by the server (4xx), in buffer.rejected.jsonl
	Corrupt          uint64 // buffer lines that did not parse, moved to buffer.corrupt.jsonl
	AuthFailures     uint64 // 401/403 answers; the entries are kept
	DroppedQueueFull uint64 // dropped: the queue was full
	DroppedBufferCap uint64 // dropped: the buffer reached buffer_max_total_bytes
	DroppedIO        uint64 // dropped: the buffer file could not be written
	QueueLen         uint64 // entries in memory now
	Poisoned         uint64 // dead-lettered after max_attempts failures while others were delivered
	ConcurrencyLimit uint64 // requests in flight allowed now (adaptive concurrency)
	RttP50Us         uint64 // median round-trip time of the last 256 requests, µs
	SenderPanics     uint64 // panics caught in a sending thread's request (the entry was retried)
	DroppedRateLimit uint64 // entries dropped by the logger's RateLimit (each counted in a summary entry)
}

// Stats returns the pipeline's counters.
func (l *Logger) Stats() (Stats, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.ptr == nil {
		return Stats{}, closedError("Stats")
	}
	var s C.rarch_statistics
	if err := resultErr("Stats", C.rg_stats(l.ptr, &s)); err != nil {
		return Stats{}, err
	}
	return Stats{
		Logged: uint64(s.logged), Filtered: uint64(s.filtered), Delivered: uint64(s.delivered),
		FailedAttempts: uint64(s.failed_attempts), Retried: uint64(s.retried),
		Buffered: uint64(s.buffered), Replayed: uint64(s.replayed), Rejected: uint64(s.rejected),
		Corrupt: uint64(s.corrupt), AuthFailures: uint64(s.auth_failures),
		DroppedQueueFull: uint64(s.dropped_queue_full), DroppedBufferCap: uint64(s.dropped_buffer_cap),
		DroppedIO: uint64(s.dropped_io), QueueLen: uint64(s.queue_len),
		Poisoned: uint64(s.poisoned), ConcurrencyLimit: uint64(s.concurrency_limit),
		RttP50Us: uint64(s.rtt_p50_us), SenderPanics: uint64(s.sender_panics),
		DroppedRateLimit: uint64(s.dropped_rate_limit),
	}, nil
}
