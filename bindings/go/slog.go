package rarchlog

import (
	"context"
	"log/slog"
	"math"
	"runtime"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// SlogLevelFatal is the slog level that maps to FATAL: slog has no such level, so log at it
// with logger.Log(ctx, rarchlog.SlogLevelFatal, "msg", ...). Every level at or above it is
// FATAL. (It is not named LevelFatal: that is the package's own Level constant.)
const SlogLevelFatal = slog.Level(12)

// SlogLevel maps a slog level onto the library's: below slog.LevelInfo is DEBUG, below
// slog.LevelWarn INFO, below slog.LevelError WARN, below SlogLevelFatal ERROR, the rest FATAL.
func SlogLevel(l slog.Level) Level {
	switch {
	case l < slog.LevelInfo:
		return LevelDebug
	case l < slog.LevelWarn:
		return LevelInfo
	case l < slog.LevelError:
		return LevelWarn
	case l < SlogLevelFatal:
		return LevelError
	default:
		return LevelFatal
	}
}

// HandlerOptions configure a Handler. The zero value is fine.
type HandlerOptions struct {
	// Level, if set, is a minimum slog level on top of the Logger's own level (which always
	// applies, and can be changed with Logger.SetLevel).
	Level slog.Leveler
	// AddSource adds {"function", "file", "line"} of the call under slog.SourceKey ("source")
	// in the context.
	AddSource bool
}

// Handler is a slog.Handler that sends each record as one entry of a Logger:
//   - the record's message and time become message and client_log_datetime (a zero time is
//     not sent: the library stamps the entry with the time of the call);
//   - the level maps as SlogLevel says;
//   - attributes and groups (from the record, WithAttrs and WithGroup) become the JSON
//     context, with groups as nested objects; empty attributes and empty groups are left
//     out, groups with an empty name are inlined, LogValuers are resolved;
//   - a top-level attribute (not inside any group) named user_id, tenant_id or request_id
//     fills that field of the entry instead of going into the context.
//
// A Handler is immutable and safe for concurrent use; Close the Logger after the last use.
type Handler struct {
	l    *Logger
	opts HandlerOptions
	goas []groupOrAttrs // what WithGroup and WithAttrs added, in order; never modified
}

type groupOrAttrs struct {
	group string      // a group name, or
	attrs []slog.Attr // attributes (when group is "")
}

// NewHandler returns a slog.Handler over l. opts may be nil.
func NewHandler(l *Logger, opts *HandlerOptions) *Handler {
	h := &Handler{l: l}
	if opts != nil {
		h.opts = *opts
	}
	return h
}

// NewSlog is slog.New(NewHandler(l, opts)).
func NewSlog(l *Logger, opts *HandlerOptions) *slog.Logger { return slog.New(NewHandler(l, opts)) }

// Enabled reports whether a record at level would be sent: the level must reach both the
// HandlerOptions' Level (if any) and the Logger's level.
func (h *Handler) Enabled(_ context.Context, level slog.Level) bool {
	if h.opts.Level != nil && level < h.opts.Level.Level() {
		return false
	}
	return h.l.Enabled(SlogLevel(level))
}

// WithAttrs returns a Handler whose entries also carry attrs (inside the current groups).
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return h.with(groupOrAttrs{attrs: attrs})
}

// WithGroup returns a Handler that nests the attributes that follow under name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(groupOrAttrs{group: name})
}

func (h *Handler) with(g groupOrAttrs) *Handler {
	h2 := *h
	h2.goas = make([]groupOrAttrs, len(h.goas)+1)
	copy(h2.goas, h.goas)
	h2.goas[len(h.goas)] = g
	return &h2
}

var encPool = sync.Pool{New: func() any { return &encoder{buf: make([]byte, 0, 512)} }}

type encoder struct {
	buf           []byte
	uid, tid, rid string
	open          []int // for each open group, where it starts (to drop it if it stays empty)
}

// Handle sends the record: one cgo call.
//
// When ctx carries a valid OpenTelemetry span context (trace.SpanContextFromContext; e.g.
// logger.InfoContext(ctx, ...)), the entry carries its trace id, span id and flags.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	e := encPool.Get().(*encoder)
	e.buf = append(e.buf[:0], '{')
	e.uid, e.tid, e.rid = "", "", ""
	e.open = e.open[:0]

	if h.opts.AddSource && r.PC != 0 {
		fs := runtime.CallersFrames([]uintptr{r.PC})
		f, _ := fs.Next()
		e.member(slog.SourceKey)
		e.buf = append(e.buf, '{')
		e.member("function")
		e.buf = appendString(e.buf, f.Function)
		e.member("file")
		e.buf = appendString(e.buf, f.File)
		e.member("line")
		e.buf = strconv.AppendInt(e.buf, int64(f.Line), 10)
		e.buf = append(e.buf, '}')
	}
	for _, g := range h.goas {
		if g.group != "" {
			e.openGroup(g.group)
			continue
		}
		for _, a := range g.attrs {
			e.attr(a)
		}
	}
	r.Attrs(func(a slog.Attr) bool {
		e.attr(a)
		return true
	})
	for len(e.open) > 0 {
		e.closeGroup()
	}
	e.buf = append(e.buf, '}')

	var raw []byte
	if len(e.buf) > 2 {
		raw = e.buf
	}
	var t time.Time
	if !r.Time.IsZero() {
		t = r.Time
	}
	var span trace.SpanContext
	if ctx != nil {
		span = trace.SpanContextFromContext(ctx)
	}
	err := h.l.send("slog", SlogLevel(r.Level), r.Message, e.uid, e.tid, e.rid, nil, t, raw, span)
	if cap(e.buf) <= 64<<10 {
		e.uid, e.tid, e.rid = "", "", ""
		encPool.Put(e)
	}
	return err
}

// member writes the separator and the key of an object member.
func (e *encoder) member(key string) {
	if e.buf[len(e.buf)-1] != '{' {
		e.buf = append(e.buf, ',')
	}
	e.buf = appendString(e.buf, key)
	e.buf = append(e.buf, ':')
}

func (e *encoder) openGroup(name string) {
	e.open = append(e.open, len(e.buf))
	e.member(name)
	e.buf = append(e.buf, '{')
}

// closeGroup ends the innermost group, or removes it if nothing was written in it.
func (e *encoder) closeGroup() {
	start := e.open[len(e.open)-1]
	e.open = e.open[:len(e.open)-1]
	if e.buf[len(e.buf)-1] == '{' {
		e.buf = e.buf[:start]
		return
	}
	e.buf = append(e.buf, '}')
}

func (e *encoder) attr(a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		attrs := a.Value.Group()
		if len(attrs) == 0 {
			return
		}
		if a.Key == "" {
			for _, g := range attrs {
				e.attr(g)
			}
			return
		}
		e.openGroup(a.Key)
		for _, g := range attrs {
			e.attr(g)
		}
		e.closeGroup()
		return
	}
	if len(e.open) == 0 {
		switch a.Key {
		case "user_id":
			e.uid = a.Value.String()
			return
		case "tenant_id":
			e.tid = a.Value.String()
			return
		case "request_id":
			e.rid = a.Value.String()
			return
		}
	}
	e.member(a.Key)
	e.value(a.Value)
}

func (e *encoder) value(v slog.Value) {
	switch v.Kind() {
	case slog.KindString:
		e.buf = appendString(e.buf, v.String())
	case slog.KindInt64:
		e.buf = strconv.AppendInt(e.buf, v.Int64(), 10)
	case slog.KindUint64:
		e.buf = strconv.AppendUint(e.buf, v.Uint64(), 10)
	case slog.KindFloat64:
		if f := v.Float64(); math.IsNaN(f) || math.IsInf(f, 0) {
			e.buf = appendString(e.buf, strconv.FormatFloat(f, 'g', -1, 64)) // JSON has no NaN, ±Inf
		} else {
			e.buf = appendAnyValue(e.buf, f)
		}
	case slog.KindBool:
		e.buf = strconv.AppendBool(e.buf, v.Bool())
	case slog.KindDuration:
		e.buf = strconv.AppendInt(e.buf, int64(v.Duration()), 10)
	case slog.KindTime:
		e.buf = append(e.buf, '"')
		e.buf = v.Time().AppendFormat(e.buf, time.RFC3339Nano)
		e.buf = append(e.buf, '"')
	default:
		e.buf = appendAnyValue(e.buf, v.Any())
	}
}
