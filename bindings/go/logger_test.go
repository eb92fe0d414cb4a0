package rarchlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func newLogger(t *testing.T, service, name string, o Options) *Logger {
	t.Helper()
	l, err := New(service, name, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func flush(t *testing.T, l *Logger) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func TestEveryLevelAndField(t *testing.T) {
	r := startReceiver(t)
	l := newLogger(t, "billing", "invoices", r.options(t))
	at := time.Date(2026, 11, 23, 22, 30, 0, 123456789, time.FixedZone("CET", 3600))
	type order struct {
		ID    int      `json:"id"`
		Items []string `json:"items"`
	}
	calls := []struct {
		level Level
		fn    func(string, ...Fields) error
	}{
		{LevelDebug, l.Debug}, {LevelInfo, l.Info}, {LevelWarn, l.Warn}, {LevelError, l.Error}, {LevelFatal, l.Fatal},
	}
	for i, c := range calls {
		f := Fields{
			UserID: fmt.Sprintf("u-%d", i), TenantID: "t-1", RequestID: fmt.Sprintf("req-%d", i),
			Context: order{ID: i, Items: []string{"a", "ü"}}, Time: at,
		}
		if err := c.fn("msg "+c.level.String(), f); err != nil {
			t.Fatalf("%v: %v", c.level, err)
		}
	}
	// Absent fields, the generic Log, and a map context.
	if err := l.Log(LevelInfo, "bare"); err != nil {
		t.Fatal(err)
	}
	if err := l.Info("map", Fields{Context: map[string]any{"b": 2, "a": "x", "n": nil, "f": 1.5, "nested": map[string]any{"k": true}}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Info("raw", Fields{Context: json.RawMessage(`{"raw": [1, 2]}`)}); err != nil {
		t.Fatal(err)
	}
	flush(t, l)
	es := r.waitEntries(8, 5*time.Second)
	if len(es) != 8 {
		t.Fatalf("got %d entries, want 8", len(es))
	}
	// Two connections deliver in parallel: arrival order is not logging order.
	byMsg := map[string]entry{}
	for _, e := range es {
		byMsg[e.str("message")] = e
	}
	for i, c := range calls {
		e := byMsg["msg "+c.level.String()]
		want := map[string]string{
			"level": c.level.String(), "service": "billing", "logger_name": "invoices",
			"message": "msg " + c.level.String(), "user_id": fmt.Sprintf("u-%d", i), "tenant_id": "t-1",
			"request_id": fmt.Sprintf("req-%d", i), "client_log_datetime": "2026-11-23T21:30:00.123456Z",
		}
		for k, v := range want {
			if e.str(k) != v {
				t.Errorf("entry %d: %s = %v, want %q", i, k, e[k], v)
			}
		}
		if got := fmt.Sprint(e.ctx()); got != fmt.Sprintf("map[id:%d items:[a ü]]", i) {
			t.Errorf("entry %d: context %s", i, got)
		}
	}
	bare := byMsg["bare"]
	if bare["user_id"] != nil || bare["tenant_id"] != nil || len(bare.ctx()) != 0 || len(bare.str("request_id")) != 36 {
		t.Errorf("bare entry: %v", bare)
	}
	if ts, err := time.Parse(time.RFC3339Nano, bare.str("client_log_datetime")); err != nil || time.Since(ts) > time.Minute {
		t.Errorf("bare entry time %q: %v", bare.str("client_log_datetime"), err)
	}
	if got := fmt.Sprint(byMsg["map"].ctx()); got != "map[a:x b:2 f:1.5 n:<nil> nested:map[k:true]]" {
		t.Errorf("map context: %s", got)
	}
	if got := fmt.Sprint(byMsg["raw"].ctx()); got != "map[raw:[1 2]]" {
		t.Errorf("raw context: %s", got)
	}
	st, err := l.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Logged != 8 || st.Delivered != 8 || st.QueueLen != 0 {
		t.Errorf("stats: %+v", st)
	}
}

func TestBadInputs(t *testing.T) {
	r := startReceiver(t)
	l := newLogger(t, "svc", "", r.options(t))
	if l.Name() != "svc" || l.Service() != "svc" {
		t.Errorf("name %q service %q", l.Name(), l.Service())
	}
	cases := []struct {
		name string
		err  error
		call func() error
	}{
		{"string context", ErrInvalidJSON, func() error { return l.Info("m", Fields{Context: "not an object"}) }},
		{"array context", ErrInvalidJSON, func() error { return l.Info("m", Fields{Context: []int{1}}) }},
		{"unmarshallable", ErrInvalidJSON, func() error { return l.Info("m", Fields{Context: map[string]any{"c": make(chan int)}}) }},
		{"bad raw json", ErrInvalidJSON, func() error { return l.Info("m", Fields{Context: json.RawMessage(`{"a":`)}) }},
		{"bad utf8", ErrInvalidUTF8, func() error { return l.Info("bad \xff") }},
		{"bad level", ErrInvalidLevel, func() error { return l.Log(Level(0), "m") }},
		{"set bad level", ErrInvalidLevel, func() error { return l.SetLevel(LevelFatal + 1) }},
		{"too large", ErrInvalidArgument, func() error { return l.Info(strings.Repeat("x", 2<<20)) }},
	}
	for _, c := range cases {
		err := c.call()
		if !errors.Is(err, c.err) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.err)
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Msg == "" {
			t.Errorf("%s: no message from rarch_last_error: %#v", c.name, err)
		}
	}
	var se *json.UnsupportedTypeError
	if err := l.Info("m", Fields{Context: map[string]any{"c": make(chan int)}}); !errors.As(err, &se) {
		t.Errorf("json cause not wrapped: %v", err)
	}
	// Nothing bad was sent; a good entry still goes through.
	if err := l.Info("ok"); err != nil {
		t.Fatal(err)
	}
	flush(t, l)
	if es := r.waitEntries(1, 5*time.Second); len(es) != 1 || es[0].str("message") != "ok" {
		t.Errorf("entries: %v", es)
	}
	if s := r.stats(); s["bad_entries"] != 0 || s["accepted"] != 1 {
		t.Errorf("receiver stats %v", s)
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name    string
		service string
		o       Options
		err     error
		inMsg   string
	}{
		{"unknown raw key", "svc", Options{BufferDir: dir, Raw: map[string]string{"no_such_key": "1"}}, ErrConfig, "no_such_key"},
		{"bad mode", "svc", Options{BufferDir: dir, Mode: "sometimes"}, ErrConfig, "mode"},
		{"bad url", "svc", Options{BufferDir: dir, URL: "ftp://x"}, ErrConfig, "url"},
		{"bad number", "svc", Options{BufferDir: dir, Connections: new(0)}, ErrConfig, "connections"},
		{"bad level", "svc", Options{BufferDir: dir, Level: Level(9)}, ErrConfig, "level"},
		{"twice", "svc", Options{BufferDir: dir, Raw: map[string]string{"buffer_dir": dir}}, ErrConfig, "buffer_dir"},
		{"backoff order", "svc", Options{BufferDir: dir, BackoffInitialMs: new(500), BackoffMaxMs: new(100)}, ErrConfig, "backoff"},
		{"path service", "a/b", Options{BufferDir: dir}, ErrInvalidArgument, "separator"},
		{"empty service", "", Options{BufferDir: dir}, ErrInvalidArgument, "empty"},
		{"NUL service", "a\x00b", Options{BufferDir: dir}, ErrInvalidArgument, "NUL"},
		{"utf8 service", "a\xffb", Options{BufferDir: dir}, ErrInvalidUTF8, "UTF-8"},
		{"buffer dir is a file", "svc", Options{BufferDir: "/dev/null"}, ErrIO, "buffer directory"},
		{"missing ca_file", "svc", Options{BufferDir: dir, CAFile: filepath.Join(dir, "none.pem")}, ErrConfig, "ca_file"},
	}
	for _, c := range cases {
		l, err := New(c.service, "", c.o)
		if err == nil {
			l.Close()
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.inMsg) {
			t.Errorf("%s: got %v, want %v containing %q", c.name, err, c.err, c.inMsg)
		}
	}
	// The API key is never echoed.
	_, err := New("svc", "", Options{BufferDir: dir, APIKey: "s3cret-key", Mode: "bad"})
	if err == nil || strings.Contains(err.Error(), "s3cret-key") {
		t.Errorf("error %v", err)
	}
}

// Unset options come from the environment, as in C; set ones win over it.
func TestEnvironmentFallback(t *testing.T) {
	r := startReceiver(t)
	t.Setenv("RARCH_LOGGING_URL", r.url())
	t.Setenv("RARCH_LOGGING_API_KEY", r.key)
	t.Setenv("RARCH_LOGGING_DEFAULT_LEVEL", "WARN")
	l := newLogger(t, "envsvc", "", Options{BufferDir: t.TempDir()})
	if l.Level() != LevelWarn {
		t.Errorf("level %v, want WARN from the environment", l.Level())
	}
	l.Info("filtered")
	l.Warn("sent")
	flush(t, l)
	es := r.waitEntries(1, 5*time.Second)
	if len(es) != 1 || es[0].str("message") != "sent" {
		t.Errorf("entries %v", es)
	}
	l2 := newLogger(t, "envsvc", "", Options{BufferDir: t.TempDir(), Level: LevelDebug})
	if l2.Level() != LevelDebug {
		t.Errorf("option did not override the environment: %v", l2.Level())
	}
	t.Setenv("RARCH_LOGGING_DEFAULT_LEVEL", "LOUD")
	if _, err := New("envsvc", "", Options{BufferDir: t.TempDir()}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "RARCH_LOGGING_DEFAULT_LEVEL") {
		t.Errorf("bad environment: %v", err)
	}
}

func TestSetLevelAndStats(t *testing.T) {
	r := startReceiver(t)
	l := newLogger(t, "lvl", "", r.options(t))
	if err := l.SetLevel(LevelError); err != nil {
		t.Fatal(err)
	}
	if l.Level() != LevelError || l.Enabled(LevelWarn) || !l.Enabled(LevelFatal) {
		t.Errorf("level %v", l.Level())
	}
	l.Debug("no")
	l.Info("no")
	l.Warn("no")
	l.Error("yes")
	l.Fatal("yes")
	flush(t, l)
	st, _ := l.Stats()
	if st.Filtered != 3 || st.Logged != 2 || st.Delivered != 2 {
		t.Errorf("stats %+v", st)
	}
	es := r.waitEntries(2, 5*time.Second)
	if len(es) != 2 || es[0].str("level")+es[1].str("level") != "ERRORFATAL" && es[0].str("level")+es[1].str("level") != "FATALERROR" {
		t.Errorf("entries %v", es)
	}
}

func TestFlushHonoursContext(t *testing.T) {
	r := startReceiver(t)
	l := newLogger(t, "flush", "", r.options(t))
	r.fault(`{"mode":"status","status":503,"rate":1.0}`)
	if err := l.Info("held back"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := l.Flush(ctx)
	if !errors.Is(err, ErrTimedOut) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush during an outage: %v", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
		t.Errorf("Flush took %v for a 300ms deadline", d)
	}
	// Cancellation of a context without a deadline.
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel2)
	start = time.Now()
	if err := l.Flush(ctx2); !errors.Is(err, context.Canceled) || !errors.Is(err, ErrTimedOut) {
		t.Fatalf("cancelled Flush: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancelled Flush returned after %v", d)
	}
	// An expired context still reports success when nothing is pending.
	r.heal()
	flush(t, l)
	es := r.waitEntries(1, 5*time.Second)
	if es[0].str("message") != "held back" {
		t.Errorf("entries %v", es)
	}
	done, cancel3 := context.WithCancel(context.Background())
	cancel3()
	if err := l.Flush(done); err != nil {
		t.Errorf("Flush with nothing pending and a cancelled context: %v", err)
	}
	if s := r.stats(); s["faults"] == 0 {
		t.Errorf("the fault was never hit: %v", s)
	}
}

func TestCloseIdempotentAndDelivers(t *testing.T) {
	r := startReceiver(t)
	l, err := New("closing", "", r.options(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		l.Info(fmt.Sprint("before close ", i))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	r.waitEntries(20, 5*time.Second) // Close delivered what was queued
	for name, err := range map[string]error{
		"Info":     l.Info("after"),
		"SetLevel": l.SetLevel(LevelInfo),
		"Flush":    l.Flush(context.Background()),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
	if _, err := l.Stats(); !errors.Is(err, ErrClosed) {
		t.Errorf("Stats after Close: %v", err)
	}
	if l.Enabled(LevelFatal) {
		t.Error("Enabled after Close")
	}
}

// A Close in the middle of logging from other goroutines: calls return nil or ErrClosed,
// never crash.
func TestCloseWhileLogging(t *testing.T) {
	r := startReceiver(t)
	l, err := New("closerace", "", r.options(t))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if err := l.Info("x"); err != nil && !errors.Is(err, ErrClosed) {
					t.Errorf("Info: %v", err)
					return
				}
			}
		}()
	}
	time.Sleep(time.Millisecond)
	wg.Add(2)
	go func() { defer wg.Done(); l.Close() }()
	go func() { defer wg.Done(); l.Close() }()
	wg.Wait()
}

func TestBlockingModeErrors(t *testing.T) {
	r := startReceiver(t)
	o := r.options(t)
	o.Mode = ModeBlocking
	o.TimeoutMs = new(1000)
	l := newLogger(t, "blocking", "", o)
	if err := l.Info("delivered"); err != nil {
		t.Fatalf("blocking Info: %v", err)
	}
	if es := r.entries(); len(es) != 1 {
		t.Fatalf("blocking mode: %d entries right after Info", len(es))
	}
	r.fault(`{"mode":"status","status":503,"rate":1.0}`)
	if err := l.Info("transport"); !errors.Is(err, ErrTransport) {
		t.Errorf("503: %v", err)
	}
	r.fault(`{"mode":"status","status":400,"rate":1.0}`)
	if err := l.Info("rejected"); !errors.Is(err, ErrRejected) {
		t.Errorf("400: %v", err)
	}
	r.heal()
	r.post("/admin/key", "another key")
	err := l.Info("auth")
	if !errors.Is(err, ErrAuth) {
		t.Errorf("wrong key: %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Status != ErrAuth || e.Op != "Info" || e.Msg == "" {
		t.Errorf("Error fields: %#v", err)
	}
	if st, _ := l.Stats(); st.AuthFailures == 0 || st.Rejected == 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestQueueFull(t *testing.T) {
	r := startReceiver(t)
	o := r.options(t)
	o.QueueCapacity, o.Connections, o.OnFull = new(1), new(1), OnFullDrop
	l := newLogger(t, "full", "", o)
	r.fault(`{"mode":"delay","delay_ms":300,"rate":1.0}`)
	var full error
	for i := 0; i < 50 && full == nil; i++ {
		if err := l.Info("x"); err != nil {
			full = err
		}
	}
	if !errors.Is(full, ErrQueueFull) {
		t.Fatalf("got %v, want ErrQueueFull", full)
	}
	if st, _ := l.Stats(); st.DroppedQueueFull == 0 {
		t.Errorf("stats %+v", st)
	}
}

// Many goroutines on one logger, through both APIs, with concurrent SetLevel, Stats and Flush.
func TestConcurrentLogging(t *testing.T) {
	r := startReceiver(t)
	l := newLogger(t, "concurrent", "", r.options(t))
	sl := NewSlog(l, nil)
	const goroutines, each = 16, 50
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				rid := fmt.Sprintf("g%d-%d", g, i)
				if i%2 == 0 {
					if err := l.Info("direct", Fields{RequestID: rid, Context: map[string]any{"g": g, "i": i}}); err != nil {
						t.Error(err)
					}
				} else {
					sl.Info("slog", "request_id", rid, "g", g, "i", i)
				}
			}
		}()
	}
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				l.SetLevel(LevelDebug)
				l.Stats()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
				l.Flush(ctx)
				cancel()
			}
		}()
	}
	wg.Wait()
	flush(t, l)
	es := r.waitEntries(goroutines*each, 10*time.Second)
	seen := map[string]bool{}
	for _, e := range es {
		seen[e.str("request_id")] = true
	}
	for g := 0; g < goroutines; g++ {
		for i := 0; i < each; i++ {
			if !seen[fmt.Sprintf("g%d-%d", g, i)] {
				t.Fatalf("g%d-%d not delivered", g, i)
			}
		}
	}
	if s := r.stats(); s["duplicates"] != 0 {
		t.Errorf("receiver stats %v", s)
	}
}

func TestBufferDirAndMirror(t *testing.T) {
	r := startReceiver(t)
	o := r.options(t)
	o.Durable = new(true)
	o.Mirror = MirrorStderr
	l := newLogger(t, "durable", "", o)
	if err := l.Warn("on disk first"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(o.BufferDir, "durable")); err != nil {
		t.Errorf("buffer directory not under BufferDir: %v", err)
	}
	flush(t, l)
	r.waitEntries(1, 5*time.Second)
}

func TestVersionAndLevels(t *testing.T) {
	if Version() == "" {
		t.Error("empty version")
	}
	for _, s := range []string{"debug", "INFO", "Warn", "ERROR", "fatal"} {
		l, err := ParseLevel(s)
		if err != nil || !strings.EqualFold(l.String(), s) {
			t.Errorf("ParseLevel(%q) = %v, %v", s, l, err)
		}
	}
	if _, err := ParseLevel("trace"); !errors.Is(err, ErrInvalidLevel) {
		t.Errorf("ParseLevel(trace): %v", err)
	}
}
