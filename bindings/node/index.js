'use strict';
// rarch-logging for Node.js: an idiomatic API over librarch_logging's C ABI, through koffi.
// See index.d.ts for the documentation of every export and README.md for an overview.

const EventEmitter = require('node:events');
const { load } = require('./lib/native.js');
const events = require('./lib/events.js');
const { RarchError } = require('./lib/errors.js');
const { STATUS_NAMES, OPTION_KEYS, STAT_FIELDS, camel } = require('./lib/tables.js');

// ---------------------------------------------------------------------------------------------
// Statuses, levels, errors

const Status = Object.freeze(Object.fromEntries(STATUS_NAMES.map((n, i) => [n, i])));

const LEVEL_NAMES = ['DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];
const Level = Object.freeze({ DEBUG: 0, INFO: 1, WARN: 2, ERROR: 3, FATAL: 4 });

function rarchError(code, message, status) {
  return new RarchError(code, message, status === undefined ? Status[code] : status);
}

let errBuf = Buffer.alloc(1024);

/** This thread's rarch_last_error message; must be called right after the failing call. */
function lastError(n) {
  let len = Number(n.last_error(errBuf, errBuf.length));
  if (len >= errBuf.length) {
    errBuf = Buffer.alloc(len + 1);
    len = Number(n.last_error(errBuf, errBuf.length));
  }
  return errBuf.toString('utf8', 0, Math.min(len, errBuf.length - 1));
}

function statusError(n, status, what) {
  const msg = lastError(n);
  const code = STATUS_NAMES[status] || `RARCH_STATUS_${status}`;
  return rarchError(code, msg || `${what}: ${n.status_str(status)}`, status);
}

function closedError() {
  return rarchError('RARCH_ERR_CLOSED', 'rarch-logging: the logger is closed');
}

/** Parses a level given as a name (any case, WARNING too) or a number 0..4. */
function parseLevel(level) {
  if (typeof level === 'number') {
    if (Number.isInteger(level) && level >= 0 && level <= 4) return level;
  } else if (typeof level === 'string') {
    const u = level.trim().toUpperCase();
    const i = LEVEL_NAMES.indexOf(u === 'WARNING' ? 'WARN' : u);
    if (i >= 0) return i;
  }
  throw rarchError('RARCH_ERR_INVALID_LEVEL',
    `invalid level ${JSON.stringify(level)} (DEBUG, INFO, WARN, ERROR, FATAL or 0..4)`);
}

// ---------------------------------------------------------------------------------------------
// Options: the keys of rarch_options_set, in camelCase

/** JS name -> key, e.g. apiKey -> api_key. */
const OPTIONS = Object.freeze(Object.assign(Object.create(null),
  Object.fromEntries(OPTION_KEYS.map((k) => [camel(k), k]))));
const NOT_OPTIONS = new Set(['service', 'loggerName']);

function optionValue(name, v) {
  if (name === 'level' && typeof v === 'number') return LEVEL_NAMES[parseLevel(v)];
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  throw rarchError('RARCH_ERR_CONFIG',
    `option ${name}: expected a string, number or boolean, got ${v === null ? 'null' : typeof v}`);
}

// ---------------------------------------------------------------------------------------------
// Entry encoding for rarch_log_n: one rarch_entry (6 x {ptr, len}) in a Buffer whose address
// koffi passes as is, pointing into a scratch Buffer that holds the UTF-8 bytes. JS strings
// always encode to valid UTF-8 (lone surrogates become U+FFFD). Measured faster than both
// rarch_log with NUL-terminated strings and koffi's struct marshalling (see bench.js).

let N = null; // the native functions once loaded
let entryBuf = null;
let entryAddr = 0n; // its address: koffi passes a BigInt pointer faster than a Buffer
let E32 = null; // Uint32Array over entryBuf: [ptr lo, ptr hi, len lo, len hi] x 6
let scratch = null;
let scratchBase = 0; // address of scratch as a Number (user-space addresses fit in 53 bits)
const TWO32 = 4294967296;

function native() {
  if (N) return N;
  const n = load();
  entryBuf = Buffer.alloc(n.entrySize);
  E32 = new Uint32Array(entryBuf.buffer, entryBuf.byteOffset, n.entrySize / 4);
  entryAddr = n.koffi.address(entryBuf);
  N = n;
  growScratch(16384);
  return N;
}

function growScratch(need) {
  let size = 16384;
  while (size < need) size *= 2;
  scratch = Buffer.alloc(size);
  scratchBase = Number(N.koffi.address(scratch));
}

const utf8Write = typeof Buffer.prototype.utf8Write === 'function'
  ? (buf, s, off) => buf.utf8Write(s, off)
  : (buf, s, off) => buf.write(s, off, 'utf8');

/** Points field i of the entry at len bytes at offset off of the scratch buffer. */
function point(i, off, len) {
  const k = i << 2;
  const p = scratchBase + off;
  E32[k] = p >>> 0;
  E32[k + 1] = (p / TWO32) >>> 0;
  E32[k + 2] = len;
  E32[k + 3] = 0;
}

/** Sets field i of the entry to NULL (absent). */
function absent(i) {
  const k = i << 2;
  E32[k] = 0; E32[k + 1] = 0; E32[k + 2] = 0; E32[k + 3] = 0;
}

/** Encodes s into the scratch buffer at off and points field i at it; returns the next offset. */
function put(i, s, off) {
  if (s === null) {
    absent(i);
    return off;
  }
  const len = utf8Write(scratch, s, off);
  point(i, off, len);
  return off + len;
}

/**
 * Fills the entry with the six strings (null: absent). The common case, all ASCII, costs one
 * call into the UTF-8 encoder for the concatenation (measured 2 to 3 times cheaper than one call
 * per string): the byte count then equals the character count, so the offsets are known.
 */
function fill(msg, user, tenant, req, ctx, time) {
  const all = msg + (user === null ? '' : user) + (tenant === null ? '' : tenant) +
    (req === null ? '' : req) + (ctx === null ? '' : ctx) + (time === null ? '' : time);
  if (3 * all.length > scratch.length) growScratch(3 * all.length);
  if (utf8Write(scratch, all, 0) === all.length) {
    let off = msg.length;
    point(0, 0, off);
    if (user === null) absent(1); else { point(1, off, user.length); off += user.length; }
    if (tenant === null) absent(2); else { point(2, off, tenant.length); off += tenant.length; }
    if (req === null) absent(3); else { point(3, off, req.length); off += req.length; }
    if (ctx === null) absent(4); else { point(4, off, ctx.length); off += ctx.length; }
    if (time === null) absent(5); else point(5, off, time.length);
    return;
  }
  // Not all ASCII: one string at a time.
  let off = put(0, msg, 0);
  off = put(1, user, off);
  off = put(2, tenant, off);
  off = put(3, req, off);
  off = put(4, ctx, off);
  put(5, time, off);
}

function optString(v, name) {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  throw new TypeError(`rarch-logging: ${name} must be a string`);
}

function contextJson(ctx) {
  if (ctx === undefined || ctx === null) return null;
  if (typeof ctx === 'string') return ctx; // already JSON; the library checks it
  let s;
  try {
    s = JSON.stringify(ctx);
  } catch (e) {
    throw rarchError('RARCH_ERR_INVALID_JSON', `context cannot be serialized: ${e.message}`);
  }
  if (typeof s !== 'string') {
    throw rarchError('RARCH_ERR_INVALID_JSON', 'context must be a JSON object');
  }
  return s;
}

function timeString(t) {
  if (t === undefined || t === null) return null;
  if (typeof t === 'string') return t; // RFC 3339; the library checks it
  if (t instanceof Date) {
    const ms = t.getTime();
    if (ms !== ms) throw rarchError('RARCH_ERR_INVALID_TIMESTAMP', 'time is an invalid Date');
    return t.toISOString();
  }
  throw new TypeError('rarch-logging: time must be a Date or an RFC 3339 string');
}

// ---------------------------------------------------------------------------------------------
// Trace correlation: the active span of @opentelemetry/api (an optional peer dependency), when
// it is installed and a span is active.

let otelApi; // the module, null when it is not installed (looked up on the first log call)

function activeTraceparent() {
  if (otelApi === undefined) {
    try {
      otelApi = require('@opentelemetry/api');
    } catch {
      otelApi = null;
    }
  }
  if (otelApi === null) return null;
  const span = otelApi.trace.getActiveSpan();
  if (span === undefined) return null;
  const sc = span.spanContext();
  if (!otelApi.isSpanContextValid(sc)) return null;
  const flags = (sc.traceFlags & 0xff).toString(16).padStart(2, '0');
  return `00-${sc.traceId}-${sc.spanId}-${flags}`;
}

// ---------------------------------------------------------------------------------------------
// Loggers

// Every logger whose native handle is not freed yet, closed or not: process exit frees them.
const live = new Set();
let exitHookInstalled = false;

function onExit() {
  for (const s of live) {
    if (s.freeing) continue; // rarch_logger_free already runs on a worker thread
    if (s.busy > 0) {
      // A flush runs on a worker thread (process.exit() during `await flush()`): freeing now
      // would race with it, so deliver what can be delivered within the close timeout.
      N.flush(s.handle, s.closeTimeoutMs);
      continue;
    }
    freeSync(s);
  }
}

function freeSync(s) {
  const h = s.handle;
  s.handle = null;
  s.closed = true;
  live.delete(s);
  if (h !== null) N.logger_free(h);
}

function freeAsync(s) {
  s.freeing = true;
  const h = s.handle;
  return new Promise((resolve) => {
    N.logger_free.async(h, () => {
      s.handle = null;
      live.delete(s);
      resolve();
    });
  });
}

/** Releases the handle once no asynchronous call uses it. */
function idle(s) {
  if (s.busy === 0 && s.onIdle) {
    const f = s.onIdle;
    s.onIdle = null;
    f();
  }
}

class Logger extends EventEmitter {
  // The state is private: the native handle can neither be read nor replaced from outside.
  #s;

  constructor(token, s) {
    if (token !== CONSTRUCT) throw new TypeError('use createLogger() to make a Logger');
    super();
    this.#s = s;
    s.poller = events.attach(this, (buf, max) => pollEvents(s, buf, max), N.eventLayout);
  }

  /** The service name. */
  get service() { return this.#s.service; }

  /** The logger name (the service name when none was given). */
  get loggerName() { return this.#s.loggerName; }

  /** True once close() or closeSync() was called. */
  get closed() { return this.#s.closed; }

  /** The level, as a name: 'DEBUG', 'INFO', 'WARN', 'ERROR' or 'FATAL'. */
  get level() {
    return LEVEL_NAMES[this.#s.level];
  }

  set level(level) {
    const s = this.#s;
    const l = parseLevel(level);
    if (s.closed) throw closedError();
    const st = N.set_level(s.handle, l);
    if (st !== 0) throw statusError(N, st, 'rarch_set_level');
    s.level = l;
  }

  debug(message, fields) { this.#log(0, message, fields); }
  info(message, fields) { this.#log(1, message, fields); }
  warn(message, fields) { this.#log(2, message, fields); }
  error(message, fields) { this.#log(3, message, fields); }
  fatal(message, fields) { this.#log(4, message, fields); }

  /** Logs at a level given as a name or a number. */
  log(level, message, fields) { this.#log(parseLevel(level), message, fields); }

  #log(level, message, fields) {
    const s = this.#s;
    if (s.closed) throw closedError();
    if (level < s.level) {
      // Below the level: no encoding at all; the library counts it as filtered.
      E32.fill(0);
      E32[0] = scratchBase >>> 0;
      E32[1] = (scratchBase / TWO32) >>> 0;
      const st = N.log_n_raw(s.handle, level, entryAddr);
      if (st !== 0) throw statusError(N, st, 'rarch_log_n');
      return;
    }
    // Everything that may run user code (toString, toJSON, toISOString) runs before the
    // shared buffers are written, so a re-entrant log call cannot corrupt them.
    let msg = message;
    if (typeof msg !== 'string') {
      if (msg === undefined || msg === null) {
        throw rarchError('RARCH_ERR_NULL_ARGUMENT', 'message is required');
      }
      msg = String(msg);
    }
    let user = null, tenant = null, req = null, ctx = null, time = null, tp = null;
    if (fields !== undefined && fields !== null) {
      user = optString(fields.userId, 'userId');
      tenant = optString(fields.tenantId, 'tenantId');
      req = optString(fields.requestId, 'requestId');
      ctx = contextJson(fields.context);
      time = timeString(fields.time);
      tp = optString(fields.traceparent, 'traceparent');
    }
    if (tp === null) tp = activeTraceparent();
    fill(msg, user, tenant, req, ctx, time);
    if (tp !== null) {
      const st = N.log_traced_raw(s.handle, level, entryAddr, tp);
      if (st !== 0) throw statusError(N, st, 'rarch_log_traced');
      return;
    }
    const st = N.log_n_raw(s.handle, level, entryAddr);
    if (st !== 0) throw statusError(N, st, 'rarch_log_n');
  }

  /**
   * Waits on a worker thread (the event loop keeps running) until every entry logged before
   * the call is delivered, up to timeoutMs.
   */
  flush(timeoutMs = 5000) {
    const s = this.#s;
    if (s.closed) return Promise.reject(closedError());
    const t = Number(timeoutMs);
    if (!Number.isFinite(t) || t < 0) {
      return Promise.reject(rarchError('RARCH_ERR_INVALID_ARGUMENT',
        `flush: timeoutMs must be a number >= 0, got ${timeoutMs}`));
    }
    const ms = Math.min(Math.floor(t), 0xffffffff);
    const h = s.handle;
    // The flush runs on a worker thread: its message comes back with the status (the
    // library's per-thread message would be the worker's).
    const msg = Buffer.alloc(1024);
    s.busy++;
    return new Promise((resolve, reject) => {
      const done = (err, st) => {
        try {
          afterFlush(s);
          if (err) return reject(err);
          if (st === 0) return resolve();
          const end = msg.indexOf(0);
          const text = msg.toString('utf8', 0, end < 0 ? msg.length : end);
          const code = STATUS_NAMES[st] || `RARCH_STATUS_${st}`;
          reject(rarchError(code, text || `rarch_flush: ${N.status_str(st)}`, st));
        } finally {
          s.busy--;
          idle(s);
        }
      };
      try {
        N.flush_msg.async(h, ms, msg, msg.length, done);
      } catch (e) {
        s.busy--;
        idle(s);
        reject(e);
      }
    });
  }

  /** The pipeline's counters. */
  stats() {
    const s = this.#s;
    if (s.closed) throw closedError();
    const out = { size: N.statsSize };
    const st = N.stats(s.handle, out);
    if (st !== 0) throw statusError(N, st, 'rarch_stats');
    const stats = {};
    for (const f of STAT_FIELDS) stats[camel(f)] = Number(out[f]);
    return stats;
  }

  /**
   * Closes the logger: delivers what it can within closeTimeoutMs, writes the rest to the
   * disk buffer. Runs on a worker thread; the promise settles when it is done. Idempotent.
   */
  close() {
    const s = this.#s;
    if (s.closePromise) return s.closePromise;
    s.poller.close();
    s.closed = true;
    if (s.handle === null) return (s.closePromise = Promise.resolve());
    s.closePromise = new Promise((resolve) => {
      s.onIdle = () => freeAsync(s).then(resolve);
    });
    idle(s);
    return s.closePromise;
  }

  /**
   * Closes the logger on this thread (blocks up to closeTimeoutMs). If a flush() is still
   * running, the handle is released when it ends. Idempotent.
   */
  closeSync() {
    const s = this.#s;
    if (s.closed) return;
    s.poller.close();
    s.closed = true;
    if (s.busy === 0) {
      freeSync(s);
      s.closePromise = Promise.resolve();
    } else {
      s.closePromise = new Promise((resolve) => {
        s.onIdle = () => freeAsync(s).then(resolve);
      });
    }
  }

  [Symbol.for('nodejs.util.inspect.custom')]() {
    const s = this.#s;
    return `Logger { service: ${JSON.stringify(s.service)}, loggerName: ${JSON.stringify(s.loggerName)}, ` +
      `level: '${LEVEL_NAMES[s.level]}', closed: ${s.closed} }`;
  }
}

events.install(Logger.prototype);

/** rarch_poll_events into buf (max events); 0 once the handle is being freed. */
function pollEvents(s, buf, max) {
  if (s.handle === null || s.freeing) return 0;
  return Number(N.poll_events(s.handle, buf, max, N.eventLayout.size));
}

/** The events of what a flush did are emitted when it ends, before its promise settles. */
function afterFlush(s) {
  try {
    s.poller.poke();
  } catch (e) {
    // A listener threw: an uncaught exception, as for any emit outside a call of the user.
    process.nextTick(() => { throw e; });
  }
}

if (typeof Symbol.asyncDispose === 'symbol') {
  Logger.prototype[Symbol.asyncDispose] = function () { return this.close(); };
}
if (typeof Symbol.dispose === 'symbol') {
  Logger.prototype[Symbol.dispose] = function () { this.closeSync(); };
}

const CONSTRUCT = Symbol('construct');

/** Makes a logger. See index.d.ts. */
function createLogger(options) {
  if (options === null || typeof options !== 'object') {
    throw new TypeError('createLogger: expected an options object with at least { service }');
  }
  const unknown = Object.keys(options).filter((k) => !NOT_OPTIONS.has(k) && !(k in OPTIONS));
  if (unknown.length > 0) {
    throw rarchError('RARCH_ERR_CONFIG',
      `createLogger: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} ` +
        `(known: service, loggerName, ${Object.keys(OPTIONS).join(', ')})`);
  }
  const { service, loggerName } = options;
  if (typeof service !== 'string' || service === '') {
    throw rarchError('RARCH_ERR_INVALID_ARGUMENT', 'createLogger: service must be a non-empty string');
  }
  if (loggerName !== undefined && loggerName !== null && typeof loggerName !== 'string') {
    throw new TypeError('createLogger: loggerName must be a string');
  }
  const n = native();
  const opts = n.options_new();
  if (!opts) throw statusError(n, Status.RARCH_ERR_PANIC, 'rarch_options_new');
  let handle;
  try {
    for (const [name, key] of Object.entries(OPTIONS)) {
      const v = options[name];
      if (v === undefined || v === null) continue; // unset: the library uses the environment
      const st = n.options_set(opts, key, optionValue(name, v));
      if (st !== 0) throw statusError(n, st, `option ${name}`);
    }
    const out = [null];
    const st = n.logger_open(service, loggerName || null, opts, out);
    if (st !== 0 || !out[0]) throw statusError(n, st || Status.RARCH_ERR_PANIC, 'rarch_logger_open');
    handle = out[0];
  } finally {
    n.options_free(opts);
  }
  const closeTimeoutMs = options.closeTimeoutMs != null ? Number(options.closeTimeoutMs) : 5000;
  const s = {
    handle,
    service,
    loggerName: loggerName || service,
    level: n.get_level(handle),
    closed: false,
    busy: 0,
    freeing: false,
    onIdle: null,
    closePromise: null,
    poller: null, // its events (lib/events.js), set by the Logger
    closeTimeoutMs: Number.isFinite(closeTimeoutMs) ? closeTimeoutMs : 5000,
  };
  live.add(s);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', onExit);
  }
  return new Logger(CONSTRUCT, s);
}

/** Closes every open logger (what process exit does). */
async function closeAll() {
  const pending = [];
  for (const s of [...live]) {
    if (!s.closed) {
      s.poller.close();
      s.closed = true;
      s.closePromise = new Promise((resolve) => {
        s.onIdle = () => freeAsync(s).then(resolve);
      });
      idle(s);
    }
    if (s.closePromise) pending.push(s.closePromise);
  }
  await Promise.all(pending);
}

/** The library's version, e.g. "0.1.0". */
function version() {
  return native().version();
}

/** The path of the loaded library (loads it if needed). */
function libraryPath() {
  return native().file;
}

module.exports = {
  createLogger,
  closeAll,
  version,
  libraryPath,
  RarchError,
  Level,
  Status,
  Logger,
};
module.exports.default = module.exports;
