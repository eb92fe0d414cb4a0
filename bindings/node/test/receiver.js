'use strict';
// Starts the repo's Go receiver (examples/receiver) on a free port, for tests, the example
// check and the benchmark. Waits on its address file with a deadline.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');

function receiverPath() {
  const env = process.env.RARCH_RECEIVER;
  if (env && fs.existsSync(env)) return env;
  const p = path.resolve(__dirname, '..', '..', '..', 'examples', 'receiver', 'receiver');
  if (fs.existsSync(p)) return p;
  throw new Error(`receiver not found (RARCH_RECEIVER=${env || ''}, ${p}): run \`make receiver\``);
}

async function waitFor(what, fn, timeoutMs = 10000, everyMs = 20) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Starts a receiver; resolves to { url, base, key, dir, stats(), entries(), fault(), setKey(), stop() }. */
async function startReceiver({ key = crypto.randomBytes(16).toString('hex') } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rarch-node-'));
  const addrFile = path.join(dir, 'addr');
  const child = spawn(receiverPath(), ['-key', key, '-addr-file', addrFile, '-quiet'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  let exited = null;
  // Never leave a receiver behind, even on process.exit().
  const killOnExit = () => { if (!exited) child.kill('SIGKILL'); };
  process.on('exit', killOnExit);
  child.on('exit', (code, sig) => {
    exited = { code, sig };
    process.removeListener('exit', killOnExit);
  });
  const addr = await waitFor('the receiver address file', () => {
    if (exited) throw new Error(`receiver exited: ${JSON.stringify(exited)}`);
    try {
      const a = fs.readFileSync(addrFile, 'utf8').trim();
      return a.includes(':') ? a : null;
    } catch {
      return null;
    }
  });
  const base = `http://${addr}`;
  const r = {
    key,
    dir,
    base,
    url: `${base}/log`,
    async stats() {
      const res = await fetch(`${base}/stats`);
      return res.json();
    },
    async entries() {
      const text = await (await fetch(`${base}/entries`)).text();
      return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
    },
    async fault(f) {
      const res = await fetch(`${base}/admin/fault`, { method: 'POST', body: JSON.stringify(f) });
      if (!res.ok) throw new Error(`fault: ${res.status}`);
    },
    async setKey(k) {
      const res = await fetch(`${base}/admin/key`, { method: 'POST', body: k });
      if (!res.ok) throw new Error(`key: ${res.status}`);
    },
    async reset() {
      await fetch(`${base}/admin/reset`, { method: 'POST' });
    },
    /** Waits until the receiver accepted at least n entries; returns them. */
    async waitEntries(n, timeoutMs = 10000) {
      let got = [];
      await waitFor(`${n} entries at the receiver`, async () => {
        got = await r.entries();
        return got.length >= n;
      }, timeoutMs, 25).catch((e) => {
        throw new Error(`${e.message} (got ${got.length})`);
      });
      return got;
    },
    async stop() {
      if (!exited) {
        const gone = new Promise((res) => child.once('exit', res));
        child.kill('SIGTERM');
        await gone;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return r;
}

/**
 * For a test file: starts one receiver and a temporary directory before its tests, closes every
 * logger and removes both after them. Returns { r, tmp, svc(name) } (r and tmp are set once the
 * tests run; svc gives a fresh service name per call, so entries can be told apart).
 */
function useReceiver(prefix) {
  const { before, after } = require('node:test');
  const ctx = { r: null, tmp: null, svc: null };
  let seq = 0;
  ctx.svc = (name) => {
    seq += 1;
    return `${prefix}-${name}-${process.pid}-${seq}`;
  };
  before(async () => {
    ctx.r = await startReceiver();
    ctx.tmp = fs.mkdtempSync(path.join(os.tmpdir(), `rarch-${prefix}-`));
  });
  after(async () => {
    await require('rarch-logging').closeAll();
    await ctx.r.stop();
    fs.rmSync(ctx.tmp, { recursive: true, force: true });
  });
  return ctx;
}

module.exports = { startReceiver, receiverPath, waitFor, useReceiver };
