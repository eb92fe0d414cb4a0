'use strict';
// The binding's copies of the C API's tables, each checked against rarch_logging.h by
// test/tables.test.js: the statuses, the option keys and the fields of rarch_statistics.

/** Status names by value, as in enum rarch_status. */
const STATUS_NAMES = [
  'RARCH_OK',
  'RARCH_ERR_NULL_ARGUMENT',
  'RARCH_ERR_INVALID_ARGUMENT',
  'RARCH_ERR_INVALID_LEVEL',
  'RARCH_ERR_INVALID_UTF8',
  'RARCH_ERR_INVALID_JSON',
  'RARCH_ERR_INVALID_TIMESTAMP',
  'RARCH_ERR_CONFIG',
  'RARCH_ERR_QUEUE_FULL',
  'RARCH_ERR_TIMED_OUT',
  'RARCH_ERR_IO',
  'RARCH_ERR_TRANSPORT',
  'RARCH_ERR_AUTH',
  'RARCH_ERR_REJECTED',
  'RARCH_ERR_CLOSED',
  'RARCH_ERR_PANIC',
];

/** The keys of rarch_options_set, in the header's order; the JS name is camelCase(key). */
const OPTION_KEYS = [
  'sink',
  'url',
  'api_key',
  'level',
  'mode',
  'buffer_dir',
  'timeout_ms',
  'queue_capacity',
  'burst_memory_bytes',
  'connections',
  'concurrency',
  'close_timeout_ms',
  'mirror',
  'max_retries',
  'max_attempts',
  'backoff_initial_ms',
  'backoff_max_ms',
  'on_full',
  'block_timeout_ms',
  'max_entry_bytes',
  'buffer_max_file_bytes',
  'buffer_max_total_bytes',
  'durable',
  'ca_file',
  'token_lifetime_s',
  'headers',
  'compression',
  'batch_max_entries',
  'batch_max_bytes',
  'batch_linger_ms',
  'events',
  'events_capacity',
  'redact_keys',
  'rate_limit',
  'rate_limit_burst',
  'otlp_protocol',
  'resource_attributes',
];

/** The counters of struct rarch_statistics after `size`, in order; stats() gives them in camelCase. */
const STAT_FIELDS = [
  'logged',
  'filtered',
  'delivered',
  'failed_attempts',
  'retried',
  'buffered',
  'replayed',
  'rejected',
  'corrupt',
  'auth_failures',
  'dropped_queue_full',
  'dropped_buffer_cap',
  'dropped_io',
  'queue_len',
  'poisoned',
  'concurrency_limit',
  'rtt_p50_us',
  'sender_panics',
  'dropped_rate_limit',
];

/** snake_case to camelCase: 'token_lifetime_s' -> 'tokenLifetimeS'. */
function camel(s) {
  return s.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
}

module.exports = { STATUS_NAMES, OPTION_KEYS, STAT_FIELDS, camel };
