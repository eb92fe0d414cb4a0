// Type definitions for rarch-logging (Node.js binding of librarch_logging). Hand-written.
// Works for both `require('rarch-logging')` and `import { createLogger } from 'rarch-logging'`.

import { EventEmitter } from 'node:events';

/** A level name. Input also accepts any case, `'WARNING'`, and the numbers 0 (DEBUG) to 4 (FATAL). */
export type LevelName = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'FATAL';
export type LevelInput =
  | LevelName
  | 'debug' | 'info' | 'warn' | 'warning' | 'error' | 'fatal' | 'WARNING'
  | 0 | 1 | 2 | 3 | 4;

/** The levels by name, lowest first (the values of the C enum rarch_level). */
export declare const Level: Readonly<{ DEBUG: 0; INFO: 1; WARN: 2; ERROR: 3; FATAL: 4 }>;

/** The statuses of the C API by name (the values of the C enum rarch_status). */
export declare const Status: Readonly<{
  RARCH_OK: 0;
  RARCH_ERR_NULL_ARGUMENT: 1;
  RARCH_ERR_INVALID_ARGUMENT: 2;
  RARCH_ERR_INVALID_LEVEL: 3;
  RARCH_ERR_INVALID_UTF8: 4;
  RARCH_ERR_INVALID_JSON: 5;
  RARCH_ERR_INVALID_TIMESTAMP: 6;
  RARCH_ERR_CONFIG: 7;
  RARCH_ERR_QUEUE_FULL: 8;
  RARCH_ERR_TIMED_OUT: 9;
  RARCH_ERR_IO: 10;
  RARCH_ERR_TRANSPORT: 11;
  RARCH_ERR_AUTH: 12;
  RARCH_ERR_REJECTED: 13;
  RARCH_ERR_CLOSED: 14;
  RARCH_ERR_PANIC: 15;
}>;

/** A status name, e.g. `'RARCH_ERR_INVALID_JSON'`. */
export type StatusName = keyof typeof Status;

/**
 * Every error thrown or rejected by this package. `code` is the status name of the C API
 * (e.g. `'RARCH_ERR_INVALID_JSON'`) and `message` the library's message for the failing call
 * (for `flush()`, returned with the status by `rarch_flush_msg`). One code is the binding's own:
 * `'RARCH_ERR_LIBRARY_NOT_FOUND'` (the library could not be loaded; `tried` lists every path
 * with the reason).
 */
export declare class RarchError extends Error {
  readonly name: 'RarchError';
  /** The status name, e.g. `'RARCH_ERR_CONFIG'`. */
  readonly code: StatusName | 'RARCH_ERR_LIBRARY_NOT_FOUND';
  /** The numeric status (see {@link Status}); undefined for `RARCH_ERR_LIBRARY_NOT_FOUND`. */
  readonly status: number | undefined;
  /** For `RARCH_ERR_LIBRARY_NOT_FOUND`: each path tried, with why it failed. */
  readonly tried?: string[];
}

/**
 * The options of the C API (`rarch_options_set`), in camelCase. A key left unset (or set to
 * `undefined`/`null`) is not passed to the library, which then uses its environment variable
 * (for `url`, `apiKey`, `level` and `headers`) or its default. Values are checked by the library when the
 * logger is made: a bad value throws a {@link RarchError} with code `'RARCH_ERR_CONFIG'`
 * naming the key. Numbers and booleans are passed as their decimal / `true`/`false` text.
 */
export interface LoggerOptions {
  /** `sink` (default `rarch`): the wire protocol, `rarch` (the logging API, one signed entry per
   * POST) or `otlp` (OTLP/HTTP logs, batched, to an OpenTelemetry Collector or any OTLP backend). */
  sink?: 'rarch' | 'otlp';
  /** `url` (env RARCH_LOGGING_URL, default `http://localhost:8080/log`): the endpoint, http or https.
   * With sink `otlp`, unset falls back to OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, then
   * OTEL_EXPORTER_OTLP_ENDPOINT + `/v1/logs`, then `http://localhost:4318/v1/logs`. */
  url?: string;
  /** `api_key` (env RARCH_LOGGING_API_KEY, default empty): the HS256 secret. Never printed or written. */
  apiKey?: string;
  /** `level` (env RARCH_LOGGING_DEFAULT_LEVEL, default DEBUG): entries below it are dropped. */
  level?: LevelInput;
  /** `mode` (default `threaded`): `threaded` (a log call enqueues) or `blocking` (a log call posts
   * and blocks the event loop for the round trip; its outcome is thrown). */
  mode?: 'threaded' | 'blocking';
  /** `buffer_dir` (default `./var/log`): the disk buffer is `<bufferDir>/<service>/buffer.jsonl`. */
  bufferDir?: string;
  /** `timeout_ms` (default 2000): timeout of each phase of a request. */
  timeoutMs?: number;
  /** `queue_capacity` (default 8192): entries held in memory. */
  queueCapacity?: number;
  /** `burst_memory_bytes` (default 8388608): the lanes' memory past queueCapacity in a burst. */
  burstMemoryBytes?: number;
  /** `connections` (default 64): the most requests in flight at once. */
  connections?: number;
  /** `concurrency` (default `adaptive`): find the requests in flight the server sustains, or `fixed` (always `connections`). */
  concurrency?: 'adaptive' | 'fixed';
  /** `close_timeout_ms` (default 5000): how long closing delivers before writing the rest to disk. */
  closeTimeoutMs?: number;
  /** `mirror` (default `off`): also print each entry as one line on stdout or stderr. */
  mirror?: 'off' | 'stdout' | 'stderr';
  /** `max_retries` (default 5): in-memory retries before an entry goes to disk. */
  maxRetries?: number;
  /** `max_attempts` (default 10): failed attempts of one entry, while others are delivered, before it is dead-lettered. */
  maxAttempts?: number;
  /** `backoff_initial_ms` (default 100): first full-jitter backoff. */
  backoffInitialMs?: number;
  /** `backoff_max_ms` (default 30000): largest backoff. */
  backoffMaxMs?: number;
  /** `on_full` (default `spill`): `spill` (to disk, never blocks), `block` (up to blockTimeoutMs) or `drop`. */
  onFull?: 'spill' | 'block' | 'drop';
  /** `block_timeout_ms` (default 100): the wait of onFull `block`. */
  blockTimeoutMs?: number;
  /** `max_entry_bytes` (default 1048576): largest JSON entry accepted. */
  maxEntryBytes?: number;
  /** `buffer_max_file_bytes` (default 5242880): rotation size of buffer.jsonl. */
  bufferMaxFileBytes?: number;
  /** `buffer_max_total_bytes` (default 268435456): cap of a service's buffer files; oldest dropped. */
  bufferMaxTotalBytes?: number;
  /** `durable` (default false): true copies each entry into the crash journal (survives kill -9) before the log call returns. */
  durable?: boolean;
  /** `ca_file` (default empty: the system roots): PEM CA certificates to trust for https. */
  caFile?: string;
  /** `token_lifetime_s` (default 3600): JWT lifetime; tokens are re-signed at half of it. */
  tokenLifetimeS?: number;
  /** `headers` (env OTEL_EXPORTER_OTLP_LOGS_HEADERS, default empty): with sink `otlp`, request headers
   * as `k1=v1,k2=v2` (values percent-decoded; unset: OTEL_EXPORTER_OTLP_LOGS_HEADERS, then
   * OTEL_EXPORTER_OTLP_HEADERS). Never printed or written. */
  headers?: string;
  /** `compression` (default `none`): with sink `otlp`, `none` or `gzip` (the request body). */
  compression?: 'none' | 'gzip';
  /** `batch_max_entries` (default 512): with sink `otlp`, the most entries in one request. */
  batchMaxEntries?: number;
  /** `batch_max_bytes` (default 1048576): with sink `otlp`, the most bytes of entries in one request. */
  batchMaxBytes?: number;
  /** `batch_linger_ms` (default 20): with sink `otlp`, how long a batch that is not full waits for more (a flush sends at once). */
  batchLingerMs?: number;
  /** `events` (default `off`): what the logger's events report: `off`, `problems` (every kind but delivered) or `all`. */
  events?: 'off' | 'problems' | 'all';
  /** `events_capacity` (default 10000): the most events waiting; past it one `eventsLost` counts the rest. */
  eventsCapacity?: number;
  /** `redact_keys` (default empty): context keys, comma-separated, any case and depth, whose values become `"[REDACTED]"`. */
  redactKeys?: string;
  /** `rate_limit` (default 0): entries a second below ERROR (0: no limit); the rest are dropped, counted and summarised. */
  rateLimit?: number;
  /** `rate_limit_burst` (default 0): entries taken at once above `rateLimit` (0: a second's worth). */
  rateLimitBurst?: number;
  /** `otlp_protocol` (env OTEL_EXPORTER_OTLP_LOGS_PROTOCOL, default `http/protobuf`): with sink `otlp`, `http/protobuf` or `http/json` (then OTEL_EXPORTER_OTLP_PROTOCOL); `grpc` is refused. */
  otlpProtocol?: 'http/protobuf' | 'http/json';
  /** `resource_attributes` (env OTEL_RESOURCE_ATTRIBUTES, default empty): with sink `otlp`, resource attributes `k1=v1,k2=v2` (values percent-decoded), merged over OTEL_RESOURCE_ATTRIBUTES's key by key. */
  resourceAttributes?: string;
}

/** What {@link createLogger} takes: the service, an optional logger name, and the options. */
export interface CreateLoggerOptions extends LoggerOptions {
  /** The service (required): one path component, not empty, no `/` or `\`, no leading `.`. */
  service: string;
  /** The logger name sent as `logger_name`; defaults to the service. */
  loggerName?: string;
}

/** The optional fields of an entry. Absent fields get the protocol's defaults. */
export interface LogFields {
  /** `user_id` (default null). */
  userId?: string | null;
  /** `tenant_id` (default null). */
  tenantId?: string | null;
  /** `request_id` (default: a fresh UUID v4). */
  requestId?: string | null;
  /** `context`: a JSON-serializable object (default `{}`), or a string that already holds a
   * JSON object. Anything else throws `RARCH_ERR_INVALID_JSON`. */
  context?: Record<string, unknown> | string | null;
  /** `client_log_datetime` (default: the time of the call): a Date, or an RFC 3339 string
   * (other offsets are converted to UTC). An invalid Date throws `RARCH_ERR_INVALID_TIMESTAMP`. */
  time?: Date | string | null;
  /** A W3C traceparent (`00-<trace id>-<span id>-<flags>`): the entry carries the trace id,
   * span id and flags. Default: the active span of `@opentelemetry/api` when that optional peer
   * dependency is installed (and a context manager makes a span active). A malformed one throws
   * `RARCH_ERR_INVALID_ARGUMENT`. */
  traceparent?: string | null;
}

/** The counters of a logger's pipeline (shared by every logger made with the same options). */
export interface LoggerStats {
  /** Entries taken (after the level filter). */
  logged: number;
  /** Entries below the logger's level. */
  filtered: number;
  /** Entries the server accepted (fresh and replayed). */
  delivered: number;
  /** Requests that did not deliver. */
  failedAttempts: number;
  /** In-memory retries. */
  retried: number;
  /** Entries written to the buffer file. */
  buffered: number;
  /** Entries delivered from the buffer file. */
  replayed: number;
  /** Entries refused by the server (4xx), written to buffer.rejected.jsonl. */
  rejected: number;
  /** Buffer lines that did not parse, moved to buffer.corrupt.jsonl. */
  corrupt: number;
  /** 401/403 answers (wrong key or token); the entries are kept. */
  authFailures: number;
  /** Dropped: the queue was full. */
  droppedQueueFull: number;
  /** Dropped: the buffer reached bufferMaxTotalBytes (oldest segment deleted). */
  droppedBufferCap: number;
  /** Dropped: the buffer file could not be written. */
  droppedIo: number;
  /** Entries in memory now. */
  queueLen: number;
  /** Dead-lettered after maxAttempts failures while other entries were delivered. */
  poisoned: number;
  /** Requests in flight allowed now (adaptive concurrency). */
  concurrencyLimit: number;
  /** Median round-trip time of the last 256 requests, in microseconds. */
  rttP50Us: number;
  /** Panics caught in a sending thread's request (the entry was retried). */
  senderPanics: number;
  /** Entries dropped by the logger's `rateLimit` (each counted in a summary entry). */
  droppedRateLimit: number;
}

/**
 * A logger. Made by {@link createLogger}; its native handle is private. Every method of a
 * closed logger throws (or rejects with) a {@link RarchError} with code `'RARCH_ERR_CLOSED'`;
 * none can crash the process.
 *
 * In the default threaded mode a log call validates the entry, enqueues it and returns; it
 * throws on invalid input (`RARCH_ERR_INVALID_JSON`, `RARCH_ERR_INVALID_TIMESTAMP`,
 * `RARCH_ERR_INVALID_ARGUMENT` for an entry above maxEntryBytes, ...) or `RARCH_ERR_QUEUE_FULL`
 * (onFull `block`/`drop`). In blocking mode it also throws `RARCH_ERR_TRANSPORT`,
 * `RARCH_ERR_AUTH` or `RARCH_ERR_REJECTED`.
 *
 * Loggers still open when the process exits normally (end of the event loop, `process.exit()`,
 * an uncaught exception) are closed by an `'exit'` handler: what is queued is delivered within
 * closeTimeoutMs and the rest written to the disk buffer. Signals that kill the process
 * (SIGTERM, SIGINT without a handler) skip 'exit': handle them and call {@link closeAll}.
 */
/**
 * What an event is about (`rarch_event_kind`), as its event name. Which are made depends on the
 * option `events`: `'problems'` is every kind but `'delivered'`, `'all'` every kind, `'off'`
 * (the default) none.
 * - `'delivered'`: an entry was delivered (2xx), fresh or from the disk buffer; `requestId` is
 *   the entry's. `'all'` only.
 * - `'deadLettered'`: an entry went to `buffer.rejected.jsonl`, refused with a 4xx (`status`) or
 *   poison (failed maxAttempts times while others were delivered); `requestId` is the entry's,
 *   `message` the reason.
 * - `'dropped'`: `count` entries were dropped (queue full, buffer cap, disk), as in `stats()`.
 * - `'outageStarted'`: the server is considered down (`status` of the failure that did it,
 *   `message` the last error); entries go to the disk buffer.
 * - `'outageEnded'`: the server answers again.
 * - `'ioError'`: a buffer file could not be written (`count` entries affected).
 * - `'rateLimited'`: `rateLimit` dropped `count` entries (one per summary entry).
 * - `'eventsLost'`: `count` events were not kept: `eventsCapacity` were waiting to be polled.
 */
export type LoggerEventKind =
  | 'delivered' | 'deadLettered' | 'dropped' | 'outageStarted' | 'outageEnded' | 'ioError'
  | 'rateLimited' | 'eventsLost';

/** One event (`rarch_event`). */
export interface LoggerEvent {
  kind: LoggerEventKind;
  /** The HTTP status, 0 when there is none. */
  status: number;
  /** The entries the event is about (1 for a per-entry kind). */
  count: number;
  /** When it happened (millisecond precision). */
  time: Date;
  /** The entry's request id for a per-entry kind, `''` otherwise. */
  requestId: string;
  /** The reason, for a person (at most 255 bytes; never the API key). */
  message: string;
}

/** The names a Logger emits: one per kind, and `'event'` for every event. */
export type LoggerEventName = LoggerEventKind | 'event';

/** A listener of event name `E`: of a {@link LoggerEvent} for the names above. */
export type LoggerListener<E extends string | symbol> =
  E extends LoggerEventName ? (ev: LoggerEvent) => void : (...args: any[]) => void;

/**
 * A logger. It is an `EventEmitter` of its delivery events ({@link LoggerEventKind}, and
 * `'event'` for all of them): while it is open and has a listener of one of these names, an
 * unref'd timer polls the library (`rarch_poll_events`) every 50 ms, and a `flush()` emits
 * what it caused before its promise settles. Without a listener nothing is polled and the
 * events wait in the library (at most `eventsCapacity`). `close()` emits the events waiting
 * then, on the next tick; those of what the close itself does are not emitted.
 */
export declare class Logger extends EventEmitter {
  private constructor();
  /** The service name. */
  readonly service: string;
  /** The logger name (the service name when none was given). */
  readonly loggerName: string;
  /** True once close() or closeSync() was called. */
  readonly closed: boolean;
  /**
   * The level. Reading gives the name; setting accepts a name (any case) or 0..4 and throws
   * `RARCH_ERR_INVALID_LEVEL` for anything else. Entries below it are dropped before any work.
   */
  get level(): LevelName;
  set level(level: LevelInput);

  /** Logs at DEBUG. */
  debug(message: string, fields?: LogFields): void;
  /** Logs at INFO. */
  info(message: string, fields?: LogFields): void;
  /** Logs at WARN. */
  warn(message: string, fields?: LogFields): void;
  /** Logs at ERROR. */
  error(message: string, fields?: LogFields): void;
  /** Logs at FATAL. */
  fatal(message: string, fields?: LogFields): void;
  /** Logs at a level given as a name or a number. */
  log(level: LevelInput, message: string, fields?: LogFields): void;

  /**
   * Waits until every entry logged before the call is delivered and the disk buffer is
   * replayed, up to `timeoutMs` (default 5000). Runs on a worker thread: the event loop keeps
   * running. Rejects with `RARCH_ERR_TIMED_OUT` (nothing is dropped; the message says what is
   * pending and the last delivery failure).
   */
  flush(timeoutMs?: number): Promise<void>;

  /** The pipeline's counters (`rarch_stats`). */
  stats(): LoggerStats;

  /**
   * Closes the logger (`rarch_logger_free` on a worker thread): the last logger of a pipeline
   * delivers what it can within closeTimeoutMs and writes the rest to the disk buffer, replayed
   * by the next start. Idempotent; resolves when done.
   */
  close(): Promise<void>;

  /** Like {@link close}, on the calling thread (blocks up to closeTimeoutMs). */
  closeSync(): void;

  // The event methods of EventEmitter, typed for the event names (any other name as usual).
  on<E extends string | symbol>(event: E, listener: LoggerListener<E>): this;
  once<E extends string | symbol>(event: E, listener: LoggerListener<E>): this;
  addListener<E extends string | symbol>(event: E, listener: LoggerListener<E>): this;
  prependListener<E extends string | symbol>(event: E, listener: LoggerListener<E>): this;
  prependOnceListener<E extends string | symbol>(event: E, listener: LoggerListener<E>): this;
  off<E extends string | symbol>(event: E, listener: LoggerListener<E>): this;
  removeListener<E extends string | symbol>(event: E, listener: LoggerListener<E>): this;
}

/**
 * Makes a logger for `service`. Options not given come from the environment, as in C.
 * Throws {@link RarchError}: `'RARCH_ERR_CONFIG'` for an unknown option key (checked here) or a
 * bad option value, `'RARCH_ERR_INVALID_ARGUMENT'` for a bad service name, `'RARCH_ERR_IO'` for
 * an unusable buffer directory (the library's own status and message),
 * `'RARCH_ERR_LIBRARY_NOT_FOUND'` when librarch_logging cannot be loaded.
 *
 * @example
 * const log = createLogger({ service: 'checkout', level: 'INFO', bufferDir: '/var/lib/checkout' });
 * log.info('order placed', { userId: 'u1', context: { orderId: 42 } });
 */
export declare function createLogger(options: CreateLoggerOptions): Logger;

/** Closes every open logger (what happens at process exit); resolves when all are closed. */
export declare function closeAll(): Promise<void>;

/** The loaded library's version, e.g. `'0.1.0'` (loads the library if needed). */
export declare function version(): string;

/**
 * The path of the loaded library (loads it if needed). It is looked for in `$RARCH_LOGGING_LIB`,
 * then the repository's build (`target/release`), then an installed copy.
 */
export declare function libraryPath(): string;

declare const rarch: {
  createLogger: typeof createLogger;
  closeAll: typeof closeAll;
  version: typeof version;
  libraryPath: typeof libraryPath;
  RarchError: typeof RarchError;
  Level: typeof Level;
  Status: typeof Status;
  Logger: typeof Logger;
};
export default rarch;
