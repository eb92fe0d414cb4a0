'use strict';
// Delivery events (rarch_poll_events) as EventEmitter events of a Logger. Internal: index.js
// makes each Logger an EventEmitter and gives it a poller from here.
//
// The library never calls back: a timer on the event loop polls it, only while the logger
// is open and has at least one listener of an event name below, and unref'd, so that it never
// keeps the process alive.

const EventEmitter = require('node:events');

/** rarch_event_kind (1-based) -> the event's name. */
const KIND_NAMES = Object.freeze([
  undefined, 'delivered', 'deadLettered', 'dropped', 'outageStarted', 'outageEnded', 'ioError',
  'rateLimited', 'eventsLost',
]);
/** Every name a listener can subscribe to: one per kind, and 'event' for all of them. */
const EVENT_NAMES = Object.freeze([...KIND_NAMES.slice(1), 'event']);
const NAMES = new Set(EVENT_NAMES);

/** How often the poller asks the library for events. */
const POLL_EVERY_MS = 50;
/** The most events one rarch_poll_events call takes. */
const BATCH = 256;
/** The most calls one poll makes, so that a large backlog does not hold the event loop long. */
const MAX_CALLS = 16;

/** Reads one NUL-terminated UTF-8 string of at most len bytes at off. */
function cString(buf, off, len) {
  const end = buf.indexOf(0, off);
  return buf.toString('utf8', off, end < 0 || end > off + len ? off + len : end);
}

/** Decodes event i of buf (laid out as rarch_event; offsets from koffi, see native.js). */
function decode(buf, i, L) {
  const o = i * L.size;
  const kind = buf.readInt32LE(o + L.kind);
  return {
    kind: KIND_NAMES[kind] || `kind${kind}`,
    status: buf.readInt32LE(o + L.status),
    count: Number(buf.readBigUInt64LE(o + L.count)),
    time: new Date(Number(buf.readBigUInt64LE(o + L.time))),
    requestId: cString(buf, o + L.requestId, L.requestIdLen),
    message: cString(buf, o + L.message, L.messageLen),
  };
}

/** The poller of one logger (stored in a WeakMap, keyed by the Logger). */
class Poller {
  /**
   * @param emitter the Logger
   * @param poll (buf, max) => number of events written into buf; 0 once the logger is closed
   * @param layout the rarch_event layout (native.js)
   */
  constructor(emitter, poll, layout) {
    this.emitter = emitter;
    this.poll = poll;
    this.L = layout;
    this.buf = null;
    this.timer = null;
    this.closed = false;
  }

  /** Whether some listener wants events. */
  wanted() {
    for (const n of EVENT_NAMES) if (this.emitter.listenerCount(n) > 0) return true;
    return false;
  }

  /** Starts the timer if it is not running and events are wanted. */
  update() {
    if (this.timer !== null || this.closed || !this.wanted()) return;
    this.timer = setInterval(() => this.tick(), POLL_EVERY_MS);
    this.timer.unref();
  }

  stop() {
    if (this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  tick() {
    if (this.closed || !this.wanted()) {
      this.stop();
      return;
    }
    this.emitAll(this.take());
  }

  /** Takes what the library holds (up to MAX_CALLS batches), decoded. */
  take() {
    const L = this.L;
    if (this.buf === null) this.buf = Buffer.alloc(BATCH * L.size);
    const out = [];
    for (let c = 0; c < MAX_CALLS; c++) {
      const n = this.poll(this.buf, BATCH);
      for (let i = 0; i < n; i++) out.push(decode(this.buf, i, L));
      if (n < BATCH) break;
    }
    return out;
  }

  emitAll(evs) {
    for (const ev of evs) {
      this.emitter.emit(ev.kind, ev);
      this.emitter.emit('event', ev);
    }
  }

  /** A poll now (a flush ended), if events are wanted. */
  poke() {
    if (!this.closed && this.wanted()) this.emitAll(this.take());
  }

  /**
   * The logger is closing, its handle still valid: a last poll, whose events are emitted on
   * the next tick (a listener that throws does not interrupt the close), then no more.
   */
  close() {
    if (this.closed) return;
    const evs = this.wanted() ? this.take() : [];
    this.closed = true;
    this.stop();
    if (evs.length > 0) process.nextTick(() => this.emitAll(evs));
  }
}

const pollers = new WeakMap();

/** Gives logger a poller (returned); poll and layout as for Poller. */
function attach(logger, poll, layout) {
  const p = new Poller(logger, poll, layout);
  pollers.set(logger, p);
  return p;
}

/**
 * Makes the methods that add listeners start the poller (a removed listener is noticed by the
 * poller itself at its next tick). Called once on Logger.prototype.
 */
function install(proto) {
  for (const m of ['on', 'addListener', 'once', 'prependListener', 'prependOnceListener']) {
    const base = EventEmitter.prototype[m];
    Object.defineProperty(proto, m, {
      configurable: true,
      writable: true,
      value: function (name, listener) {
        base.call(this, name, listener);
        if (NAMES.has(name)) {
          const p = pollers.get(this);
          if (p) p.update();
        }
        return this;
      },
    });
  }
}

module.exports = { attach, install, EVENT_NAMES, KIND_NAMES, POLL_EVERY_MS };
