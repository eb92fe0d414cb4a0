package rarchlog

/*
#include <rarch_logging.h>

// The struct's size is this header's: the library writes no more than that per event.
static size_t rg_poll_events(rarch_logger *lg, rarch_event *out, size_t max) {
	return rarch_poll_events(lg, out, max, sizeof(rarch_event));
}
*/
import "C"

import (
	"fmt"
	"sync"
	"time"
)

// EventKind says what an Event is about (rarch_event_kind).
type EventKind int

// The kinds of Event. Which are made depends on Options.Events: "problems" is every kind but
// EventDelivered, "all" is every kind; "off" (the default) makes none.
const (
	// EventDelivered: an entry was delivered (2xx), fresh or from the disk buffer. RequestID
	// is the entry's. Only with Events "all".
	EventDelivered EventKind = iota + 1
	// EventDeadLettered: an entry went to buffer.rejected.jsonl, refused with a 4xx (Status)
	// or poison (failed max_attempts times while others were delivered). RequestID is the
	// entry's, Message the reason.
	EventDeadLettered
	// EventDropped: Count entries were dropped (queue full, buffer cap, disk), as counted in
	// Stats.
	EventDropped
	// EventOutageStarted: the delivery policy declared the server down (Status of the failure
	// that did it, Message the last error); entries go to the disk buffer.
	EventOutageStarted
	// EventOutageEnded: the server answered again.
	EventOutageEnded
	// EventIOError: a buffer file could not be written (Count entries affected).
	EventIOError
	// EventRateLimited: the logger's RateLimit dropped Count entries (one per summary entry).
	EventRateLimited
	// EventEventsLost: Count events were not kept, EventsCapacity of them waiting to be read.
	EventEventsLost
)

// The constants are rarch_event_kind's values: an index out of range (a compile error)
// otherwise.
var _ = [1]struct{}{}[EventDelivered-EventKind(C.RARCH_EVENT_DELIVERED)]
var _ = [1]struct{}{}[EventEventsLost-EventKind(C.RARCH_EVENT_EVENTS_LOST)]

var eventKindNames = [...]string{
	EventDelivered: "delivered", EventDeadLettered: "dead_lettered", EventDropped: "dropped",
	EventOutageStarted: "outage_started", EventOutageEnded: "outage_ended", EventIOError: "io_error",
	EventRateLimited: "rate_limited", EventEventsLost: "events_lost",
}

// String is the kind's name in snake case, e.g. "dead_lettered".
func (k EventKind) String() string {
	if k >= EventDelivered && int(k) < len(eventKindNames) {
		return eventKindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one thing that happened to the entries of a logger's pipeline (rarch_event).
type Event struct {
	Kind      EventKind
	Status    int       // the HTTP status, 0 when there is none
	Count     uint64    // the entries it is about (1 for a per-entry kind)
	Time      time.Time // when it happened (millisecond precision)
	RequestID string    // the entry's request_id for a per-entry kind, "" otherwise
	Message   string    // the reason, for a person (truncated to 255 bytes; never the API key)
}

const (
	// eventsChanCap is the buffer of the channel Events returns.
	eventsChanCap = 1024
	// eventsPollEvery is how often the poller asks the library for events.
	eventsPollEvery = 50 * time.Millisecond
	// eventsBatch is the most events one rarch_poll_events call takes.
	eventsBatch = 64
)

// eventPoller is a Logger's events goroutine, started by the first call of Events.
type eventPoller struct {
	mu     sync.Mutex
	ch     chan Event
	kick   chan struct{} // a poll now (after Flush)
	stop   chan struct{} // closed by Close
	done   chan struct{} // closed when the goroutine has closed ch and returned
	closed bool
}

// Events returns the channel of the logger's events (see EventKind; Options.Events chooses
// which are made, and with the default "off" none is). The first call starts a goroutine
// that polls the library every 50 ms, and at once when a Flush returns, while the logger is
// open; Close closes the channel. Every call returns the same channel; after Close it is
// closed.
//
// The channel holds 1024 events. The goroutine never blocks on it: it takes from the library
// only as many events as the channel has room for, and the rest wait in the library's queue
// (at most EventsCapacity, past which one EventEventsLost counts the rest). Events still in
// the library when Close is called, and those of what Close itself does, are not sent: Flush
// and read the channel before Close to see them. Loggers made with the same Options share a
// pipeline, hence its events: each event goes to one of them.
func (l *Logger) Events() <-chan Event {
	p := &l.events
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch != nil {
		return p.ch
	}
	p.ch = make(chan Event, eventsChanCap)
	l.mu.RLock()
	isOpen := l.ptr != nil
	l.mu.RUnlock()
	if p.closed || !isOpen {
		p.closed = true
		close(p.ch)
		return p.ch
	}
	p.kick = make(chan struct{}, 1)
	p.stop = make(chan struct{})
	p.done = make(chan struct{})
	go l.pollEvents(p.ch, p.kick, p.stop, p.done)
	return p.ch
}

// poke asks the poller, if there is one, for a poll now.
func (p *eventPoller) poke() {
	p.mu.Lock()
	kick := p.kick
	p.mu.Unlock()
	if kick != nil {
		select {
		case kick <- struct{}{}:
		default: // a poll is already asked for
		}
	}
}

// shutdown stops the poller (after its last poll) and waits until it has closed the channel.
// Called by Close before it frees the logger; later calls return at once.
func (p *eventPoller) shutdown() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	stop, done := p.stop, p.done
	p.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

func (l *Logger) pollEvents(ch chan Event, kick, stop, done chan struct{}) {
	defer close(done)
	defer close(ch)
	buf := new([eventsBatch]C.rarch_event)
	t := time.NewTicker(eventsPollEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			l.pollInto(ch, buf) // a last look
			return
		case <-t.C:
		case <-kick:
		}
		l.pollInto(ch, buf)
	}
}

// pollInto moves events from the library to ch, as many as ch has room for. It is the only
// sender on ch, so the sends never block.
func (l *Logger) pollInto(ch chan Event, buf *[eventsBatch]C.rarch_event) {
	for {
		room := min(cap(ch)-len(ch), eventsBatch)
		if room == 0 {
			return
		}
		l.mu.RLock()
		if l.ptr == nil {
			l.mu.RUnlock()
			return
		}
		n := int(C.rg_poll_events(l.ptr, &buf[0], C.size_t(room)))
		l.mu.RUnlock()
		for i := range n {
			ch <- eventFromC(&buf[i])
		}
		if n < room {
			return
		}
	}
}

func eventFromC(e *C.rarch_event) Event {
	return Event{
		Kind:      EventKind(e.kind),
		Status:    int(e.status),
		Count:     uint64(e.count),
		Time:      time.UnixMilli(int64(e.time_unix_ms)),
		RequestID: C.GoString(&e.request_id[0]),
		Message:   C.GoString(&e.message[0]),
	}
}
