'use strict';
// The binding against the repo's Go receiver: what the receiver accepted, not only return codes.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const EventEmitter = require('node:events');
const rarch = require('rarch-logging'); // the package by name (self-reference through "exports")
const { createLogger, RarchError, Level, Status } = rarch;
const { startReceiver, waitFor } = require('./receiver.js');

let r;
let tmp;
let seq = 0;

before(async () => {
  r = await startReceiver();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rarch-node-test-'));
});
after(async () => {
  await rarch.closeAll();
  await r.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A fresh service name per test, so entries can be told apart at the shared receiver. */
function svc(name) {
  seq += 1;
  return `node-${name}-${process.pid}-${seq}`;
}

function make(service, extra = {}) {
  return createLogger({ service, url: r.url, apiKey: r.key, bufferDir: tmp, ...extra });
}

async function entriesOf(service, n, timeoutMs = 10000) {
  let got = [];
  await waitFor(`${n} entries of ${service}`, async () => {
    got = (await r.entries()).filter((e) => e.service === service);
    return got.length >= n;
  }, timeoutMs, 25);
  return got;
}

test('every level and every field reaches the receiver as given', async () => {
  const service = svc('fields');
  const log = make(service, { loggerName: 'orders' });
  const t = new Date('2026-11-23T22:30:00.123Z');
  const ctx = { orderId: 42, items: [{ sku: 'a', qty: 2 }], nested: { ok: true, none: null } };
  log.debug('a debug', { userId: 'user_1', tenantId: 'tenant_1', requestId: 'req_1', context: ctx, time: t });
  log.info('an info', { userId: 'user_2' });
  log.warn('a warn');
  log.error('an error', { context: '{"code":500}' });
  log.fatal('a fatal', { tenantId: 'tenant_5', time: '2026-11-23T23:30:00+01:00' });
  log.log('info', 'via log()');
  await log.flush(10000);
  const got = await entriesOf(service, 6);
  assert.equal(got.length, 6);
  const by = Object.fromEntries(got.map((e) => [e.message, e]));
  assert.deepEqual(by['a debug'], {
    level: 'DEBUG', service, logger_name: 'orders', message: 'a debug', user_id: 'user_1',
    tenant_id: 'tenant_1', request_id: 'req_1', context: ctx,
    client_log_datetime: '2026-11-23T22:30:00.123Z',
  });
  assert.equal(by['an info'].level, 'INFO');
  assert.equal(by['an info'].user_id, 'user_2');
  assert.equal(by['an info'].tenant_id, null);
  // Absent fields: the protocol's defaults.
  const w = by['a warn'];
  assert.equal(w.level, 'WARN');
  assert.equal(w.user_id, null);
  assert.equal(w.tenant_id, null);
  assert.match(w.request_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual(w.context, {});
  assert.ok(Math.abs(Date.parse(w.client_log_datetime) - Date.now()) < 60000, w.client_log_datetime);
  assert.match(w.client_log_datetime, /Z$/);
  assert.deepEqual(by['an error'].context, { code: 500 });
  assert.equal(by['an error'].level, 'ERROR');
  assert.equal(by['a fatal'].level, 'FATAL');
  assert.equal(Date.parse(by['a fatal'].client_log_datetime), Date.parse('2026-11-23T22:30:00Z'));
  assert.equal(by['via log()'].level, 'INFO');
  const st = log.stats();
  assert.equal(st.logged, 6);
  assert.equal(st.delivered, 6);
  for (const [k, v] of Object.entries(st)) assert.equal(typeof v, 'number', k);
  await log.close();
});

test('strings round-trip: non-ASCII, quotes, control characters, NUL, lone surrogates, big context', async () => {
  const service = svc('strings');
  const log = make(service);
  const odd = 'ünïcødé 日本 🎉 "quoted" back\\slash\nnew line\ttab \u0000nul';
  const big = { blob: 'x'.repeat(200000), tail: 'é' };
  log.info(odd, { userId: 'üser', tenantId: '🎉', requestId: 'req-ascii', context: { s: odd } });
  log.info('lone \ud800 surrogate');
  log.info('big', { context: big });
  log.info('ascii after big', { userId: 'u', context: { a: 1 } });
  await log.flush(10000);
  const got = await entriesOf(service, 4);
  const by = Object.fromEntries(got.map((e) => [e.message, e]));
  assert.ok(by[odd], 'the odd message arrives unchanged (pointer+length strings keep the NUL)');
  assert.equal(by[odd].user_id, 'üser');
  assert.equal(by[odd].tenant_id, '🎉');
  assert.deepEqual(by[odd].context, { s: odd });
  assert.ok(by['lone \ufffd surrogate'], 'a lone surrogate becomes U+FFFD (valid UTF-8)');
  assert.deepEqual(by.big.context, big);
  assert.deepEqual(by['ascii after big'].context, { a: 1 });
  assert.equal(by['ascii after big'].user_id, 'u');
  await log.close();
});

test('a context whose toJSON logs does not corrupt the entry being logged', async () => {
  const service = svc('reentrant');
  const log = make(service);
  const ctx = { toJSON() { log.warn('inner', { userId: 'inner-user', context: { inner: true } }); return { outer: true }; } };
  log.info('outer', { userId: 'outer-user', context: ctx });
  await log.flush(10000);
  const got = await entriesOf(service, 2);
  const by = Object.fromEntries(got.map((e) => [e.message, e]));
  assert.deepEqual([by.outer.user_id, by.outer.context], ['outer-user', { outer: true }]);
  assert.deepEqual([by.inner.user_id, by.inner.context], ['inner-user', { inner: true }]);
  await log.close();
});

test('levels: option, property, filtering, invalid values', async () => {
  const service = svc('levels');
  const log = make(service, { level: 'warn' });
  assert.equal(log.level, 'WARN');
  log.debug('filtered debug');
  log.info('filtered info');
  log.warn('kept warn');
  log.level = 'debug';
  assert.equal(log.level, 'DEBUG');
  log.debug('kept debug');
  log.level = Level.ERROR;
  assert.equal(log.level, 'ERROR');
  log.warn('filtered warn');
  log.level = 'WARNING';
  assert.equal(log.level, 'WARN');
  for (const bad of ['verbose', 7, -1, 1.5, null]) {
    assert.throws(() => { log.level = bad; }, (e) => e instanceof RarchError && e.code === 'RARCH_ERR_INVALID_LEVEL');
    assert.throws(() => log.log(bad, 'x'), { code: 'RARCH_ERR_INVALID_LEVEL' });
  }
  assert.equal(log.level, 'WARN');
  await log.flush(10000);
  const got = await entriesOf(service, 2);
  assert.deepEqual(got.map((e) => e.message).sort(), ['kept debug', 'kept warn']);
  const st = log.stats();
  assert.equal(st.filtered, 3);
  assert.equal(st.logged, 2);
  // Numbers are accepted as the level option too.
  const l2 = make(svc('levels-num'), { level: 3 });
  assert.equal(l2.level, 'ERROR');
  await l2.close();
  await log.close();
});

test('errors carry the status name and the library message', async () => {
  const service = svc('errors');
  const log = make(service);
  const check = (fn, code, re) => assert.throws(fn, (e) => {
    assert.ok(e instanceof RarchError);
    assert.ok(e instanceof Error);
    assert.equal(e.name, 'RarchError');
    assert.equal(e.code, code);
    assert.equal(e.status, Status[code]);
    assert.match(e.message, re);
    return true;
  });
  check(() => log.info('x', { context: [1, 2] }), 'RARCH_ERR_INVALID_JSON', /context_json.*JSON object/);
  check(() => log.info('x', { context: '{not json' }), 'RARCH_ERR_INVALID_JSON', /context_json/);
  check(() => log.info('x', { time: 'yesterday' }), 'RARCH_ERR_INVALID_TIMESTAMP', /RFC 3339/);
  check(() => log.info('x', { time: new Date(NaN) }), 'RARCH_ERR_INVALID_TIMESTAMP', /invalid Date/);
  const cyc = {}; cyc.self = cyc;
  check(() => log.info('x', { context: cyc }), 'RARCH_ERR_INVALID_JSON', /circular/i);
  check(() => createLogger({ service: 's', bogus: 1 }), 'RARCH_ERR_CONFIG', /unknown option bogus/);
  check(() => createLogger({ service: 's', api_key: 'k' }), 'RARCH_ERR_CONFIG', /unknown option api_key/);
  check(() => make('s', { timeoutMs: 'abc' }), 'RARCH_ERR_CONFIG', /timeout_ms/);
  check(() => make('s', { mode: 'sometimes' }), 'RARCH_ERR_CONFIG', /mode/);
  check(() => make('s', { onFull: 'explode' }), 'RARCH_ERR_CONFIG', /on_full/);
  check(() => make('../escape'), 'RARCH_ERR_INVALID_ARGUMENT', /service/);
  check(() => make('s', { maxEntryBytes: 2048 }).info('x'.repeat(4096)), 'RARCH_ERR_INVALID_ARGUMENT', /.+/);
  assert.throws(() => log.info(), { code: 'RARCH_ERR_NULL_ARGUMENT' });
  assert.throws(() => createLogger({}), { code: 'RARCH_ERR_INVALID_ARGUMENT' });
  assert.throws(() => createLogger(), TypeError);
  assert.throws(() => log.info('x', { userId: {} }), TypeError);
  // Nothing of the above reached the receiver; the logger still works.
  log.info('still fine');
  await log.flush(10000);
  const got = await entriesOf(service, 1);
  assert.deepEqual(got.map((e) => e.message), ['still fine']);
  await rarch.closeAll();
});

test('flush runs off the event loop; a timeout rejects with RARCH_ERR_TIMED_OUT and loses nothing', async () => {
  const service = svc('flush');
  const log = make(service, { backoffInitialMs: 20, backoffMaxMs: 100, timeoutMs: 2000 });
  // The receiver answers 503 to everything: nothing can be delivered.
  await r.fault({ mode: 'status', status: 503, rate: 1.0 });
  try {
    for (let i = 0; i < 5; i++) log.info(`pending ${i}`);
    let ticks = 0;
    const timer = setInterval(() => { ticks += 1; }, 10);
    const t0 = Date.now();
    await assert.rejects(log.flush(400), (e) => {
      assert.ok(e instanceof RarchError);
      assert.equal(e.code, 'RARCH_ERR_TIMED_OUT');
      assert.match(e.message, /flush timed out after 400 ms/);
      assert.match(e.message, /503|not yet delivered|disk buffer/);
      return true;
    });
    clearInterval(timer);
    assert.ok(Date.now() - t0 >= 350, 'flush waited');
    assert.ok(ticks >= 5, `the event loop ran during flush (${ticks} ticks)`);
  } finally {
    await r.fault({ mode: 'none' });
  }
  await log.flush(15000);
  const got = await entriesOf(service, 5);
  assert.equal(got.length, 5);
  assert.ok(log.stats().failedAttempts > 0);
  await assert.rejects(log.flush(-1), { code: 'RARCH_ERR_INVALID_ARGUMENT' });
  await log.close();
});

test('a closed logger throws RARCH_ERR_CLOSED and never crashes', async () => {
  const log = make(svc('closed'));
  log.info('before close');
  const flushing = log.flush(5000); // in flight while close() is called
  const closing = log.close();
  assert.equal(log.closed, true);
  assert.equal(log.close(), closing, 'close() is idempotent');
  await flushing;
  await closing;
  log.closeSync();
  assert.throws(() => log.info('after'), { name: 'RarchError', code: 'RARCH_ERR_CLOSED' });
  assert.throws(() => log.fatal('after', { context: { a: 1 } }), { code: 'RARCH_ERR_CLOSED' });
  assert.throws(() => log.stats(), { code: 'RARCH_ERR_CLOSED' });
  assert.throws(() => { log.level = 'INFO'; }, { code: 'RARCH_ERR_CLOSED' });
  await assert.rejects(log.flush(100), { code: 'RARCH_ERR_CLOSED' });
  assert.equal(log.level, 'DEBUG');
  // The handle is not reachable: no property or symbol but those of any EventEmitter, not in
  // JSON or inspect output.
  const plain = new EventEmitter();
  assert.deepEqual(Object.getOwnPropertyNames(log), Object.getOwnPropertyNames(plain));
  assert.deepEqual(Object.getOwnPropertySymbols(log).map(String),
    Object.getOwnPropertySymbols(plain).map(String));
  assert.throws(() => new rarch.Logger(), TypeError);

  const s2 = make(svc('closesync'));
  s2.info('x');
  s2.closeSync();
  assert.throws(() => s2.warn('y'), { code: 'RARCH_ERR_CLOSED' });
});

test('close() delivers what is queued; the rest goes to the disk buffer and is replayed', async () => {
  const service = svc('buffer');
  await r.fault({ mode: 'status', status: 503, rate: 1.0 });
  let log;
  try {
    log = make(service, { closeTimeoutMs: 300, backoffInitialMs: 20, backoffMaxMs: 50 });
    for (let i = 0; i < 3; i++) log.error(`spilled ${i}`, { context: { i } });
    await log.close();
  } finally {
    await r.fault({ mode: 'none' });
  }
  const file = path.join(tmp, service, 'buffer.jsonl');
  assert.ok(fs.existsSync(file), 'the entries were written to the disk buffer');
  assert.equal(fs.readFileSync(file, 'utf8').trim().split('\n').length, 3);
  // The next logger of the service replays the buffer.
  const again = make(service);
  await again.flush(15000);
  const got = await entriesOf(service, 3);
  assert.deepEqual(got.map((e) => e.message).sort(), ['spilled 0', 'spilled 1', 'spilled 2']);
  assert.equal(again.stats().replayed, 3);
  await again.close();
});

test('wrong key: entries are kept and delivered once the key matches', async () => {
  const service = svc('auth');
  const log = make(service, { apiKey: 'wrong-key', backoffInitialMs: 20, backoffMaxMs: 100 });
  log.info('needs the right key');
  await waitFor('an auth failure', () => log.stats().authFailures > 0, 10000);
  assert.ok((await r.stats()).unauthorized > 0);
  const right = r.key;
  await r.setKey('wrong-key');
  try {
    await log.flush(15000);
    const got = await entriesOf(service, 1);
    assert.equal(got[0].message, 'needs the right key');
  } finally {
    await r.setKey(right);
  }
  await log.close();
});

test('blocking mode posts on the call and throws the outcome', async () => {
  const service = svc('blocking');
  const log = make(service, { mode: 'blocking' });
  log.warn('posted now', { requestId: 'blocking-1' });
  // Delivered before the call returned: no flush, no wait.
  const now = (await r.entries()).filter((e) => e.service === service);
  assert.deepEqual(now.map((e) => e.request_id), ['blocking-1']);
  const bad = make(svc('blocking-auth'), { mode: 'blocking', apiKey: 'nope' });
  assert.throws(() => bad.info('refused'), { code: 'RARCH_ERR_AUTH' });
  await bad.close();
  await log.close();
});

test('options: every key maps to the C API; unset keys are not set', async () => {
  const service = svc('options');
  const log = make(service, {
    level: 'INFO', mode: 'threaded', timeoutMs: 1500, queueCapacity: 1024, connections: 1,
    closeTimeoutMs: 2000, mirror: 'off', maxRetries: 3, backoffInitialMs: 50, backoffMaxMs: 500,
    onFull: 'spill', blockTimeoutMs: 50, maxEntryBytes: 65536, bufferMaxFileBytes: 1048576,
    bufferMaxTotalBytes: 4194304, durable: true, caFile: undefined, tokenLifetimeS: 600,
  });
  log.info('with every option');
  // durable: in the crash journal (a file in the service's buffer directory) before info()
  // returned.
  const journal = fs.readdirSync(path.join(tmp, service)).filter((n) => n.startsWith('buffer.journal-'));
  assert.ok(journal.length >= 1, `no journal segment: ${journal}`);
  await log.flush(10000);
  const got = await entriesOf(service, 1);
  assert.equal(got[0].message, 'with every option');
  await log.close();
  assert.throws(() => make(svc('ca'), { url: 'https://127.0.0.1:1/log', caFile: path.join(tmp, 'missing.pem') }),
    { code: 'RARCH_ERR_CONFIG' });
  assert.throws(() => make(svc('obj'), { timeoutMs: { ms: 5 } }), { code: 'RARCH_ERR_CONFIG' });
});

test('queue full with onFull=drop throws RARCH_ERR_QUEUE_FULL and counts it', async () => {
  const service = svc('full');
  await r.fault({ mode: 'delay', delay_ms: 1000, rate: 1.0 });
  try {
    const log = make(service, { queueCapacity: 4, onFull: 'drop', connections: 1, closeTimeoutMs: 100 });
    let full = 0;
    for (let i = 0; i < 50; i++) {
      try {
        log.info(`e${i}`);
      } catch (e) {
        assert.equal(e.code, 'RARCH_ERR_QUEUE_FULL');
        full += 1;
      }
    }
    assert.ok(full > 0, 'some entries did not fit');
    assert.equal(log.stats().droppedQueueFull, full);
    log.closeSync();
  } finally {
    await r.fault({ mode: 'none' });
  }
});
