'use strict';
// Trace correlation: the active span of @opentelemetry/api (with a context manager that makes
// it active) and an explicit traceparent go on the entry as trace_id, span_id and trace_flags.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const api = require('@opentelemetry/api');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
const rarch = require('rarch-logging');
const { startReceiver, waitFor } = require('./receiver.js');

let r;
let tmp;

before(async () => {
  r = await startReceiver();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rarch-node-trace-'));
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
});
after(async () => {
  await rarch.closeAll();
  await r.stop();
  api.context.disable();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('the active span, or a traceparent given, is on the entry', async () => {
  const service = `node-trace-${process.pid}`;
  const log = rarch.createLogger({ service, url: r.url, apiKey: r.key, bufferDir: tmp });
  const span = api.trace.wrapSpanContext({
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    traceFlags: api.TraceFlags.SAMPLED,
  });
  api.context.with(api.trace.setSpan(api.context.active(), span), () => {
    log.info('in span');
  });
  log.info('outside');
  log.info('given', { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' });
  assert.throws(() => log.info('bad', { traceparent: '00-00000000000000000000000000000000-b7ad6b7169203331-01' }),
    (e) => e.code === 'RARCH_ERR_INVALID_ARGUMENT' && /traceparent/.test(e.message));
  await log.flush(10000);
  let got = [];
  await waitFor('3 entries', async () => {
    got = (await r.entries()).filter((e) => e.service === service);
    return got.length >= 3;
  }, 10000, 25);
  const by = Object.fromEntries(got.map((e) => [e.message, e]));
  assert.equal(by['in span'].trace_id, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(by['in span'].span_id, '00f067aa0ba902b7');
  assert.equal(by['in span'].trace_flags, 1);
  assert.equal(by.outside.trace_id, undefined);
  assert.equal(by.given.trace_id, '0af7651916cd43dd8448eb211c80319c');
  assert.equal(by.given.trace_flags, 0);
  assert.equal(by.bad, undefined);
  await log.close();
});
