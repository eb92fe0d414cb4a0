'use strict';
// Delivery events (the Logger as an EventEmitter) against the repo's Go receiver: what the
// library reported for what the receiver did.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const EventEmitter = require('node:events');
const { execFile } = require('node:child_process');
const { createLogger } = require('rarch-logging');
const { useReceiver, waitFor } = require('./receiver.js');

const ctx = useReceiver('node-ev');
const svc = ctx.svc;

function make(service, extra = {}) {
  return createLogger({
    service, url: ctx.r.url, apiKey: ctx.r.key, bufferDir: ctx.tmp, backoffInitialMs: 10, backoffMaxMs: 200, ...extra,
  });
}

test('events=all: a delivered event per entry, with its request id; "event" gets them too', async () => {
  const service = svc('all');
  const log = make(service, { events: 'all' });
  assert.ok(log instanceof EventEmitter);
  const delivered = [];
  const all = [];
  log.on('delivered', (ev) => delivered.push(ev));
  log.on('event', (ev) => all.push(ev));
  const t0 = Date.now() - 1000;
  for (let i = 0; i < 500; i++) log.info('e', { requestId: `all-${i}` });
  await log.flush(10000);
  // The flush polls before its promise settles: every delivery is already emitted.
  assert.equal(delivered.length, 500);
  assert.equal(all.length, 500);
  const ids = new Set(delivered.map((e) => e.requestId));
  for (let i = 0; i < 500; i++) assert.ok(ids.has(`all-${i}`), `no delivered event for all-${i}`);
  for (const ev of delivered) {
    assert.equal(ev.kind, 'delivered');
    assert.equal(ev.count, 1);
    assert.ok(ev.time instanceof Date && ev.time.getTime() >= t0 && ev.time.getTime() <= Date.now() + 1000);
  }
  await log.close();
});

test('events=problems: a 400 gives one deadLettered event with its status and id, no delivered', async () => {
  const service = svc('dead');
  const log = make(service, { events: 'problems' });
  const evs = [];
  log.on('event', (ev) => evs.push(ev));
  const dead = [];
  log.once('deadLettered', (ev) => dead.push(ev));
  await ctx.r.fault({ mode: 'status', status: 400, count: 1 });
  log.info('refused', { requestId: 'dead-1' });
  await log.flush(10000);
  for (let i = 0; i < 20; i++) log.info('fine', { requestId: `ok-${i}` });
  await log.flush(10000);
  await waitFor('the dead-lettered event', () => dead.length === 1, 10000);
  assert.equal(dead[0].status, 400);
  assert.equal(dead[0].requestId, 'dead-1');
  assert.equal(dead[0].count, 1);
  assert.ok(dead[0].message.length > 0);
  assert.deepEqual(evs.map((e) => e.kind), ['deadLettered'], JSON.stringify(evs));
  await log.close();
});

test('an outage: outageStarted (503), then outageEnded, and every entry delivered', async () => {
  const service = svc('outage');
  const log = make(service, { events: 'problems' });
  const kinds = [];
  let started = null;
  log.on('outageStarted', (ev) => { started = ev; });
  log.on('event', (ev) => kinds.push(ev.kind));
  await ctx.r.fault({ mode: 'status', status: 503, rate: 1.0 });
  for (let i = 0; i < 100; i++) log.info('during', { requestId: `o-${i}` });
  // Nothing flushes here: the interval timer must report it.
  await waitFor('outageStarted', () => started !== null, 20000);
  assert.equal(started.status, 503);
  assert.ok(started.message.length > 0);
  await ctx.r.fault({ mode: 'none' });
  await log.flush(20000);
  await waitFor('outageEnded', () => kinds.includes('outageEnded'), 20000);
  assert.ok(kinds.indexOf('outageStarted') < kinds.indexOf('outageEnded'), kinds.join(','));
  const got = (await ctx.r.entries()).filter((e) => e.service === service);
  assert.equal(new Set(got.map((e) => e.request_id)).size, 100);
  await log.close();
});

test('rateLimited events count the entries rate_limit dropped, as the stats do', async () => {
  const service = svc('rate');
  const log = make(service, { events: 'problems', rateLimit: 100 });
  let sum = 0;
  log.on('rateLimited', (ev) => { sum += ev.count; });
  for (let i = 0; i < 2000; i++) log.debug('storm');
  await log.flush(10000);
  const dropped = log.stats().droppedRateLimit;
  assert.ok(dropped > 0);
  await waitFor('rateLimited events adding up', () => sum >= dropped, 10000);
  assert.equal(sum, dropped);
  await log.close();
});

test('no listener: no polling, the events wait; a listener added later gets them', async () => {
  const service = svc('late');
  const log = make(service, { events: 'all' });
  for (let i = 0; i < 30; i++) log.info('e', { requestId: `late-${i}` });
  await log.flush(10000);
  await ctx.r.waitEntries(1);
  const got = [];
  const onEv = (ev) => got.push(ev.requestId);
  log.on('delivered', onEv);
  await waitFor('30 delivered events', () => got.length >= 30, 10000);
  assert.equal(new Set(got).size, 30);
  // Removed: the poller stops at its next tick and takes nothing more.
  log.off('delivered', onEv);
  for (let i = 0; i < 5; i++) log.info('e', { requestId: `after-${i}` });
  await log.flush(10000);
  const more = [];
  log.on('delivered', (ev) => more.push(ev.requestId));
  await waitFor('the 5 later events, kept for the new listener', () => more.length >= 5, 10000);
  assert.deepEqual(more.sort(), [0, 1, 2, 3, 4].map((i) => `after-${i}`));
  await log.close();
});

test('close: the events so far are emitted, then no more', async () => {
  const service = svc('close');
  const log = make(service, { events: 'all' });
  const got = [];
  log.on('delivered', (ev) => got.push(ev.requestId));
  log.info('x', { requestId: 'c-1' });
  // Wait until the receiver has it, without a flush: the last poll at close reports it.
  await ctx.r.waitEntries(1);
  await waitFor('the entry delivered', () => got.length === 1 || log.stats().delivered >= 1, 10000);
  await log.close();
  await new Promise((res) => setImmediate(res));
  assert.deepEqual(got, ['c-1']);
  assert.equal(log.closed, true);
  // Adding a listener to a closed logger starts nothing.
  log.on('event', () => assert.fail('an event after close'));
  await new Promise((res) => setTimeout(res, 120));
});

test('a listener does not keep the process alive: the event loop ends, the entries are delivered', async () => {
  const service = svc('exit');
  const script = `
    const { createLogger } = require('rarch-logging');
    const log = createLogger({ service: ${JSON.stringify(service)}, bufferDir: ${JSON.stringify(ctx.tmp)},
      url: process.env.U, apiKey: process.env.K, events: 'all' });
    log.on('event', () => {});
    for (let i = 0; i < 5; i++) log.info('exit ' + i);`;
  const res = await new Promise((resolve) => {
    execFile(process.execPath, ['-e', script], {
      cwd: path.resolve(__dirname, '..'), timeout: 20000, env: { ...process.env, U: ctx.r.url, K: ctx.r.key },
    }, (err, stdout, stderr) => resolve({ code: err ? (err.code ?? err.signal) : 0, stderr }));
  });
  assert.equal(res.code, 0, res.stderr);
  const got = (await ctx.r.entries()).filter((e) => e.service === service);
  assert.equal(got.length, 5);
});
