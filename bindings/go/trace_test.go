package rarchlog

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// TestTraceContext: Logger.LogContext and the slog handler take the span context of the
// context (trace.SpanContextFromContext): the entry carries trace_id, span_id and
// trace_flags; without a span, none of them.
func TestTraceContext(t *testing.T) {
	r := startReceiver(t)
	l := newLogger(t, "tracesvc", "", r.options(t))
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)

	if err := l.LogContext(ctx, LevelInfo, "with span", Fields{RequestID: "ctx-1"}); err != nil {
		t.Fatal(err)
	}
	if err := l.LogContext(context.Background(), LevelInfo, "no span", Fields{RequestID: "ctx-2"}); err != nil {
		t.Fatal(err)
	}
	sl := NewSlog(l, nil)
	sl.InfoContext(ctx, "slog with span", "request_id", "slog-1")
	sl.InfoContext(context.Background(), "slog no span", "request_id", "slog-2")
	flush(t, l)
	es := r.waitEntries(4, 5*time.Second)
	byRID := map[string]entry{}
	for _, e := range es {
		byRID[e.str("request_id")] = e
	}
	for _, rid := range []string{"ctx-1", "slog-1"} {
		e := byRID[rid]
		if e.str("trace_id") != "4bf92f3577b34da6a3ce929d0e0e4736" || e.str("span_id") != "00f067aa0ba902b7" ||
			e["trace_flags"] != json.Number("1") {
			t.Errorf("%s: %v", rid, e)
		}
	}
	for _, rid := range []string{"ctx-2", "slog-2"} {
		e := byRID[rid]
		if _, ok := e["trace_id"]; ok || e.str("message") == "" {
			t.Errorf("%s: a trace without a span: %v", rid, e)
		}
	}
}
