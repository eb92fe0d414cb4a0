package rarchlog

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/slogtest"
	"time"
)

// recorder wraps the Handler under test to remember each record's time, so the results can
// tell "the handler sent the record's time" from "the library stamped the call time" (the
// protocol always carries a client_log_datetime, so a received entry always has one).
type recorder struct {
	slog.Handler
	mu    *sync.Mutex
	times *[]time.Time
}

func (r recorder) Handle(ctx context.Context, rec slog.Record) error {
	r.mu.Lock()
	*r.times = append(*r.times, rec.Time)
	r.mu.Unlock()
	return r.Handler.Handle(ctx, rec)
}

func (r recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return recorder{r.Handler.WithAttrs(as), r.mu, r.times}
}

func (r recorder) WithGroup(name string) slog.Handler {
	return recorder{r.Handler.WithGroup(name), r.mu, r.times}
}

// slogResult turns a received entry into the map slogtest expects: the context's members at
// the top level, plus msg, level and (if the record had one) time.
func slogResult(t *testing.T, e entry, recTime time.Time) map[string]any {
	m := map[string]any{}
	for k, v := range e.ctx() {
		m[k] = v
	}
	m[slog.MessageKey] = e.str("message")
	m[slog.LevelKey] = e.str("level")
	got, err := time.Parse(time.RFC3339Nano, e.str("client_log_datetime"))
	if err != nil {
		t.Errorf("client_log_datetime %q: %v", e.str("client_log_datetime"), err)
	}
	if !recTime.IsZero() {
		if !got.Equal(recTime.Truncate(time.Microsecond)) {
			t.Errorf("client_log_datetime %v, want the record's time %v", got, recTime)
		}
		m[slog.TimeKey] = got
	}
	return m
}

func TestSlogtest(t *testing.T) {
	r := startReceiver(t)
	l := newLogger(t, "slogtest", "", r.options(t))
	var mu sync.Mutex
	var times []time.Time
	n := 0
	slogtest.Run(t, func(*testing.T) slog.Handler {
		mu.Lock()
		times = times[:0]
		mu.Unlock()
		return recorder{NewHandler(l, nil), &mu, &times}
	}, func(t *testing.T) map[string]any {
		flush(t, l)
		n++
		es := r.waitEntries(n, 5*time.Second)
		if len(es) != n {
			t.Fatalf("%d entries, want %d", len(es), n)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(times) != 1 {
			t.Fatalf("%d records handled, want 1", len(times))
		}
		return slogResult(t, es[n-1], times[0])
	})
}

// The same cases through slogtest.TestHandler, all at once.
func TestSlogTestHandler(t *testing.T) {
	r := startReceiver(t)
	o := r.options(t)
	o.Connections = new(1) // one sender: entries arrive in the order logged
	l := newLogger(t, "slogtesth", "", o)
	var mu sync.Mutex
	var times []time.Time
	h := recorder{NewHandler(l, nil), &mu, &times}
	err := slogtest.TestHandler(h, func() []map[string]any {
		flush(t, l)
		es := r.waitEntries(len(times), 5*time.Second)
		out := make([]map[string]any, len(es))
		for i, e := range es {
			out[i] = slogResult(t, e, times[i])
		}
		return out
	})
	if err != nil {
		t.Error(err)
	}
}

func TestSlogLevelsAndFields(t *testing.T) {
	r := startReceiver(t)
	l := newLogger(t, "slogsvc", "web", r.options(t))
	sl := NewSlog(l, nil)
	cases := []struct {
		level slog.Level
		want  string
	}{
		{slog.LevelDebug - 4, "DEBUG"}, {slog.LevelDebug, "DEBUG"}, {slog.LevelInfo, "INFO"}, {slog.LevelInfo + 2, "INFO"},
		{slog.LevelWarn, "WARN"}, {slog.LevelError, "ERROR"}, {slog.LevelError + 3, "ERROR"},
		{SlogLevelFatal, "FATAL"}, {SlogLevelFatal + 4, "FATAL"},
	}
	for i, c := range cases {
		sl.Log(context.Background(), c.level, "m", "request_id", fmt.Sprint("lvl-", i))
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	rec := slog.NewRecord(at, slog.LevelInfo, "fields", 0)
	rec.AddAttrs(slog.String("user_id", "u-1"), slog.Int("tenant_id", 7), slog.String("request_id", "r-1"),
		slog.Group("g", slog.String("user_id", "stays in context")), slog.Duration("took", 1500*time.Millisecond),
		slog.Any("err", fmt.Errorf("boom")), slog.Float64("f", 0.25), slog.Any("list", []int{1, 2}),
		slog.String("esc", "a\"b\\c\n\x01é"))
	if err := sl.With("shared", 1).Handler().Handle(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	flush(t, l)
	es := r.waitEntries(len(cases)+1, 5*time.Second)
	byRID := map[string]entry{}
	for _, e := range es {
		byRID[e.str("request_id")] = e
	}
	for i, c := range cases {
		e := byRID[fmt.Sprint("lvl-", i)]
		if e.str("level") != c.want || e.str("logger_name") != "web" || len(e.ctx()) != 0 {
			t.Errorf("slog level %v: entry %v, want %s", c.level, e, c.want)
		}
	}
	e := byRID["r-1"]
	if e.str("user_id") != "u-1" || e.str("tenant_id") != "7" || e.str("client_log_datetime") != "2026-01-02T03:04:05.000006Z" {
		t.Errorf("fields: %v", e)
	}
	b, _ := json.Marshal(e.ctx())
	want := `{"err":"boom","esc":"a\"b\\c\n\u0001é","f":0.25,"g":{"user_id":"stays in context"},"list":[1,2],"shared":1,"took":1500000000}`
	if string(b) != want {
		t.Errorf("context\n got %s\nwant %s", b, want)
	}
}

func TestSlogEnabled(t *testing.T) {
	r := startReceiver(t)
	l := newLogger(t, "slogen", "", r.options(t))
	h := NewHandler(l, &HandlerOptions{Level: slog.LevelInfo, AddSource: true})
	ctx := context.Background()
	if h.Enabled(ctx, slog.LevelDebug) || !h.Enabled(ctx, slog.LevelInfo) {
		t.Error("HandlerOptions.Level ignored")
	}
	l.SetLevel(LevelError)
	if h.Enabled(ctx, slog.LevelWarn) || !h.Enabled(ctx, slog.LevelError) || !h.Enabled(ctx, SlogLevelFatal) {
		t.Error("Logger level ignored")
	}
	sl := slog.New(h)
	sl.Warn("dropped")
	sl.Error("sent")
	flush(t, l)
	es := r.waitEntries(1, 5*time.Second)
	if len(es) != 1 || es[0].str("message") != "sent" {
		t.Fatalf("entries %v", es)
	}
	src, _ := es[0].ctx()[slog.SourceKey].(map[string]any)
	if !strings.HasSuffix(fmt.Sprint(src["file"]), "slog_test.go") || src["line"] == nil {
		t.Errorf("source %v", src)
	}
}
