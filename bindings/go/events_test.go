package rarchlog

import (
	"fmt"
	"testing"
	"time"
)

// collectEvents reads ch until done says the events so far are enough, or fails the test
// after within.
func collectEvents(t *testing.T, ch <-chan Event, what string, within time.Duration, done func([]Event) bool) []Event {
	t.Helper()
	var got []Event
	timeout := time.After(within)
	for !done(got) {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("waiting for %s: the channel was closed; got %d events: %v", what, len(got), got)
			}
			got = append(got, ev)
		case <-timeout:
			t.Fatalf("waiting for %s: not within %v; got %d events: %v", what, within, len(got), got)
		}
	}
	return got
}

func countKind(evs []Event, k EventKind) int {
	n := 0
	for _, e := range evs {
		if e.Kind == k {
			n++
		}
	}
	return n
}

// eventsLogger starts a receiver and a logger of service with Options.Events set to events
// (then tune, if not nil), and takes its channel.
func eventsLogger(t *testing.T, service, events string, tune func(*Options)) (*receiver, *Logger, <-chan Event) {
	t.Helper()
	r := startReceiver(t)
	o := r.options(t)
	o.Events = events
	if tune != nil {
		tune(&o)
	}
	l := newLogger(t, service, "", o)
	return r, l, l.Events()
}

// logN logs n entries at level with the request ids prefix0 .. prefix<n-1>.
func logN(t *testing.T, l *Logger, level Level, prefix string, n int) {
	t.Helper()
	for i := range n {
		if err := l.Log(level, "e", Fields{RequestID: fmt.Sprintf("%s%d", prefix, i)}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEventsAllReportsEachDeliveryWithItsRequestID(t *testing.T) {
	_, l, ch := eventsLogger(t, "ev-all", "all", nil)
	if l.Events() != ch {
		t.Fatal("Events returned another channel on the second call")
	}
	const n = 500
	before := time.Now().Add(-time.Second)
	logN(t, l, LevelInfo, "ev-", n)
	flush(t, l)
	evs := collectEvents(t, ch, "500 delivered events", 10*time.Second, func(e []Event) bool {
		return countKind(e, EventDelivered) >= n
	})
	ids := map[string]bool{}
	for _, e := range evs {
		if e.Kind != EventDelivered {
			t.Fatalf("unexpected event %+v", e)
		}
		if e.Count != 1 || e.Time.Before(before) || e.Time.After(time.Now().Add(time.Second)) {
			t.Fatalf("bad delivered event %+v", e)
		}
		ids[e.RequestID] = true
	}
	for i := range n {
		if !ids[fmt.Sprintf("ev-%d", i)] {
			t.Fatalf("no delivered event for ev-%d", i)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case ev, ok := <-ch:
		if ok {
			t.Fatalf("event after the 500: %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not close the channel")
	}
	if _, ok := <-l.Events(); ok {
		t.Fatal("Events after Close: the channel is open")
	}
}

func TestEventsProblemsReportADeadLetterAndNoDelivery(t *testing.T) {
	r, l, ch := eventsLogger(t, "ev-dead", "problems", nil)
	r.fault(`{"mode":"status","status":400,"count":1}`)
	if err := l.Info("refused", Fields{RequestID: "dead-1"}); err != nil {
		t.Fatal(err)
	}
	flush(t, l)
	logN(t, l, LevelInfo, "ok-", 20)
	flush(t, l)
	evs := collectEvents(t, ch, "a dead-lettered event", 10*time.Second, func(e []Event) bool {
		return countKind(e, EventDeadLettered) >= 1
	})
	r.waitEntries(20, 10*time.Second)
	flush(t, l)
	// Whatever else is in the channel after the flush's poll: no delivery may be among it.
	for {
		select {
		case ev := <-ch:
			evs = append(evs, ev)
			continue
		case <-time.After(200 * time.Millisecond):
		}
		break
	}
	var dead Event
	for _, e := range evs {
		switch e.Kind {
		case EventDeadLettered:
			dead = e
		case EventDelivered:
			t.Fatalf("delivered event with events=problems: %+v", e)
		}
	}
	if dead.Status != 400 || dead.RequestID != "dead-1" || dead.Count != 1 || dead.Message == "" {
		t.Fatalf("dead-lettered event: %+v", dead)
	}
	if dead.Kind.String() != "dead_lettered" {
		t.Fatalf("kind name %q", dead.Kind.String())
	}
}

func TestEventsOutageStartsAndEnds(t *testing.T) {
	r, l, ch := eventsLogger(t, "ev-outage", "problems", nil)
	r.fault(`{"mode":"status","status":503,"rate":1.0}`)
	logN(t, l, LevelInfo, "o-", 100)
	evs := collectEvents(t, ch, "outage started", 20*time.Second, func(e []Event) bool {
		return countKind(e, EventOutageStarted) >= 1
	})
	r.heal()
	flush(t, l)
	evs = append(evs, collectEvents(t, ch, "outage ended", 20*time.Second, func(e []Event) bool {
		return countKind(e, EventOutageEnded) >= 1
	})...)
	var started, ended = -1, -1
	for i, e := range evs {
		if e.Kind == EventOutageStarted && started < 0 {
			started = i
			if e.Status != 503 || e.Message == "" {
				t.Fatalf("outage started: %+v", e)
			}
		}
		if e.Kind == EventOutageEnded {
			ended = i
		}
	}
	if started > ended {
		t.Fatalf("outage ended before it started: %v", evs)
	}
	if d := r.stats()["distinct"]; d != 100 {
		t.Fatalf("receiver has %d distinct entries, want 100", d)
	}
}

// A reader that is late loses nothing: what does not fit in the channel waits in the
// library's queue.
func TestEventsWaitInTheLibraryWhileTheChannelIsFull(t *testing.T) {
	_, l, ch := eventsLogger(t, "ev-full", "all", nil)
	const n = 3 * eventsChanCap
	logN(t, l, LevelDebug, "f-", n)
	flush(t, l)
	// Wait until the channel is full, then read them all.
	deadline := time.Now().Add(10 * time.Second)
	for len(ch) < cap(ch) {
		if time.Now().After(deadline) {
			t.Fatalf("the channel holds %d events, want %d", len(ch), cap(ch))
		}
		time.Sleep(10 * time.Millisecond)
	}
	evs := collectEvents(t, ch, "every delivered event", 10*time.Second, func(e []Event) bool {
		return len(e) >= n
	})
	seen := map[string]bool{}
	for _, e := range evs {
		if e.Kind != EventDelivered || seen[e.RequestID] {
			t.Fatalf("event %+v (lost or repeated)", e)
		}
		seen[e.RequestID] = true
	}
}

func TestEventsRateLimitedCountTheDroppedEntries(t *testing.T) {
	_, l, ch := eventsLogger(t, "ev-rate", "problems", func(o *Options) { o.RateLimit = new(100) })
	logN(t, l, LevelDebug, "storm-", 2000)
	flush(t, l) // the last summary is made at the flush
	st, err := l.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.DroppedRateLimit == 0 {
		t.Fatalf("no entry was rate limited: %+v", st)
	}
	var sum uint64
	collectEvents(t, ch, "rate limited events adding up to the stats", 10*time.Second, func(e []Event) bool {
		sum = 0
		for _, ev := range e {
			if ev.Kind == EventRateLimited {
				sum += ev.Count
			}
		}
		return sum >= st.DroppedRateLimit
	})
	if sum != st.DroppedRateLimit {
		t.Fatalf("rate limited events count %d, stats %d", sum, st.DroppedRateLimit)
	}
}

func TestEventsOffMakesNoneAndCloseEndsThePoller(t *testing.T) {
	r, l, ch := eventsLogger(t, "ev-off", "", nil)
	logN(t, l, LevelInfo, "quiet-", 10)
	flush(t, l)
	r.waitEntries(10, 10*time.Second)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// The channel is closed by Close, with nothing in it.
	if ev, ok := <-ch; ok {
		t.Fatalf("event with events=off: %+v", ev)
	}
}

func TestEventKindNames(t *testing.T) {
	want := map[EventKind]string{
		EventDelivered: "delivered", EventDeadLettered: "dead_lettered", EventDropped: "dropped",
		EventOutageStarted: "outage_started", EventOutageEnded: "outage_ended", EventIOError: "io_error",
		EventRateLimited: "rate_limited", EventEventsLost: "events_lost", 0: "EventKind(0)", 9: "EventKind(9)",
	}
	for k, s := range want {
		if k.String() != s {
			t.Errorf("%d: %q, want %q", int(k), k.String(), s)
		}
	}
	// The constants are the C enum's values.
	if EventDelivered != 1 || EventEventsLost != 8 {
		t.Fatal("EventKind values differ from rarch_event_kind")
	}
}
