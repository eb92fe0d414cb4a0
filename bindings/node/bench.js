'use strict';
// npm run bench: the caller's cost of one `info` call with three fields and a small context,
// beside an empty koffi call (rarch_get_level) measured in the same run, and the two other
// ways of calling the library that were considered, on a raw handle (declared here):
//   - rarch_log, with NUL-terminated strings converted by koffi,
//   - rarch_log_n with koffi marshalling a JS object into struct rarch_entry.
// The logger sends to a local receiver (the repo's Go receiver) so entries are really
// delivered; between timed rounds the bench awaits flush() (not timed) so the queue never
// fills. Rounds of the variants are interleaved.
//
// Environment: BENCH_N (calls per round, default 2000), BENCH_ROUNDS (default 15).
// The machine is shared: the best round shows the cost without interference, the median
// round with it. Both are printed; the target is checked on the best round.
// The last lines include one "BENCH lang=node ..." line with the same figures (bench/bindings.sh).

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const rarch = require('./index.js');
const { load } = require('./lib/native.js');
const { startReceiver } = require('./test/receiver.js');

const N = Number(process.env.BENCH_N || 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 15);

function median(a) {
  const s = [...a].sort((x, y) => x - y);
  return s[s.length >> 1];
}

async function main() {
  let receiver = null;
  try {
    receiver = await startReceiver();
  } catch (e) {
    console.error(`bench: ${e.message}; set RARCH_RECEIVER or run \`make receiver\``);
    process.exit(2);
  }
  const bufferDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rarch-node-bench-'));
  const common = { url: receiver.url, apiKey: receiver.key, bufferDir, queueCapacity: 65536 };
  const logger = rarch.createLogger({ service: 'bench', loggerName: 'node', ...common });

  // A raw handle for the alternative calls and the baseline (same options: same pipeline),
  // with the functions the package does not declare.
  const n = load();
  const lib = n.koffi.load(n.file);
  const raw = {
    logger_new: lib.func('rarch_logger *rarch_logger_new(const char *service, const char *logger_name, const rarch_options *opts)'),
    log: lib.func('int rarch_log(rarch_logger *logger, int level, const char *message, const char *user_id, const char *tenant_id, const char *request_id, const char *context_json, const char *client_log_datetime)'),
    log_n_struct: lib.func('int rarch_log_n(rarch_logger *logger, int level, const rarch_entry *entry)'),
  };
  const opts = n.options_new();
  n.options_set(opts, 'url', receiver.url);
  n.options_set(opts, 'api_key', receiver.key);
  n.options_set(opts, 'buffer_dir', bufferDir);
  n.options_set(opts, 'queue_capacity', '65536');
  const h = raw.logger_new('bench', 'node', opts);
  n.options_free(opts);

  const ctx = { orderId: 42, path: '/checkout', ok: true };
  const fields = { userId: 'user_123', tenantId: 'tenant_abc', requestId: 'req_456', context: ctx };

  const variants = {
    'empty koffi call rarch_get_level (baseline)': () => {
      for (let i = 0; i < N; i++) n.get_level(h);
    },
    'logger.info (rarch_log_n, pointer+length)  ': () => {
      for (let i = 0; i < N; i++) logger.info('order placed', fields);
    },
    'rarch_log, NUL-terminated strings          ': () => {
      for (let i = 0; i < N; i++) {
        const st = raw.log(h, 1, 'order placed', fields.userId, fields.tenantId, fields.requestId,
          JSON.stringify(fields.context), null);
        if (st !== 0) throw new Error(`rarch_log: ${st}`);
      }
    },
    'rarch_log_n, koffi struct marshalling      ': () => {
      const str = (s) => (s == null ? { ptr: null, len: 0 } : { ptr: s, len: Buffer.byteLength(s) });
      for (let i = 0; i < N; i++) {
        const st = raw.log_n_struct(h, 1, {
          message: str('order placed'),
          user_id: str(fields.userId),
          tenant_id: str(fields.tenantId),
          request_id: str(fields.requestId),
          context_json: str(JSON.stringify(fields.context)),
          client_log_datetime: str(null),
        });
        if (st !== 0) throw new Error(`rarch_log_n: ${st}`);
      }
    },
    'logger.debug below the level (filtered)    ': null, // set up below
  };
  const filtered = rarch.createLogger({ service: 'bench', loggerName: 'filtered', level: 'INFO', ...common });
  variants['logger.debug below the level (filtered)    '] = () => {
    for (let i = 0; i < N; i++) filtered.debug('order placed', fields);
  };

  const results = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  // Warm-up (JIT), then interleaved timed rounds with an untimed flush after each.
  for (const f of Object.values(variants)) f();
  await logger.flush(30000);
  for (let r = 0; r < ROUNDS; r++) {
    // Rotate the order every round so no variant always runs first after a flush.
    const order = Object.entries(variants);
    for (let k = 0; k < r % order.length; k++) order.push(order.shift());
    for (const [name, f] of order) {
      const t0 = process.hrtime.bigint();
      f();
      const t1 = process.hrtime.bigint();
      results[name].push(Number(t1 - t0) / N);
      await logger.flush(30000);
    }
  }

  const BASE = 'empty koffi call rarch_get_level (baseline)';
  const best = Math.min(...results[BASE]);
  const med = median(results[BASE]);
  console.log(`rarch-logging ${rarch.version()} (${rarch.libraryPath()}), node ${process.version}, ` +
    `${os.cpus().length} CPUs, load average ${os.loadavg()[0].toFixed(1)}; ${ROUNDS} rounds x ${N} calls; ` +
    'entries delivered to a local receiver while measured');
  console.log('fields: userId, tenantId, requestId + context ' + JSON.stringify(ctx));
  console.log(`  ${'call'.padEnd(43)}  ${'best ns/call'.padStart(12)} ${'ratio'.padStart(7)}  ${'median ns/call'.padStart(14)} ${'ratio'.padStart(7)}`);
  for (const [name, v] of Object.entries(results)) {
    const b = Math.min(...v);
    const m = median(v);
    console.log(`  ${name.trimEnd().padEnd(43)}  ${b.toFixed(0).padStart(12)} ${(b / best).toFixed(1).padStart(6)}x  ` +
      `${m.toFixed(0).padStart(14)} ${(m / med).toFixed(1).padStart(6)}x`);
  }
  const info = Math.min(...results['logger.info (rarch_log_n, pointer+length)  ']);
  console.log(`target: logger.info <= 2000 ns/call (best round): ${info <= 2000 ? 'met' : 'NOT met'} ` +
    `(${info.toFixed(0)} ns; median ${median(results['logger.info (rarch_log_n, pointer+length)  ']).toFixed(0)} ns)`);

  // One machine-readable line (bench/bindings.sh): ns per call, best and median round.
  const fig = (name, tag) => `${tag}_ns_best=${Math.min(...results[name]).toFixed(0)} ` +
    `${tag}_ns_median=${median(results[name]).toFixed(0)}`;
  console.log(`BENCH lang=node ${fig('logger.info (rarch_log_n, pointer+length)  ', 'info')} ` +
    `${fig(BASE, 'noop')} ${fig('rarch_log, NUL-terminated strings          ', 'rarch_log')} ` +
    `${fig('logger.debug below the level (filtered)    ', 'filtered')} rounds=${ROUNDS} calls_per_round=${N}`);

  const st = logger.stats();
  n.logger_free(h);
  await filtered.close();
  await logger.close();
  const rs = await receiver.stats();
  console.log(`delivered by the pipeline: ${st.delivered}; receiver accepted ${rs.accepted}, ` +
    `bad entries ${rs.bad_entries}, unauthorized ${rs.unauthorized}`);
  await receiver.stop();
  fs.rmSync(bufferDir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
