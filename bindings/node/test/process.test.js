'use strict';
// Child processes: delivery at exit without flush, environment fallback, ESM, library lookup.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startReceiver, waitFor } = require('./receiver.js');

const PKG = path.resolve(__dirname, '..');
let r;
let tmp;

before(async () => {
  r = await startReceiver();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rarch-node-proc-'));
});
after(async () => {
  await r.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Runs `node` with args in the package directory; resolves to { code, stdout, stderr }. */
function node(args, env = {}, timeoutMs = 30000) {
  return new Promise((resolve) => {
    execFile(process.execPath, args, {
      cwd: PKG, timeout: timeoutMs, env: { ...process.env, ...env },
    }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? err.signal) : 0, stdout, stderr });
    });
  });
}

async function entriesOf(service) {
  return (await r.entries()).filter((e) => e.service === service);
}

for (const how of ['end of the event loop', 'process.exit()', 'uncaught exception']) {
  test(`entries queued at exit are delivered without flush or close (${how})`, async () => {
    const service = `node-exit-${how.replace(/\W+/g, '-')}-${process.pid}`;
    const tail = {
      'end of the event loop': '',
      'process.exit()': 'process.exit(0);',
      'uncaught exception': 'throw new Error("boom");',
    }[how];
    const script = `
      const { createLogger } = require('rarch-logging');
      const log = createLogger({ service: ${JSON.stringify(service)}, bufferDir: ${JSON.stringify(tmp)},
        url: process.env.U, apiKey: process.env.K });
      for (let i = 0; i < 200; i++) log.info('exit entry ' + i, { context: { i } });
      ${tail}`;
    const res = await node(['-e', script], { U: r.url, K: r.key });
    assert.equal(res.code, how === 'uncaught exception' ? 1 : 0, res.stderr);
    // The child has exited: everything must already be at the receiver.
    const got = await entriesOf(service);
    assert.equal(got.length, 200);
    assert.equal(new Set(got.map((e) => e.message)).size, 200);
  });
}

test('unset options come from the environment, as in C', async () => {
  const service = `node-env-${process.pid}`;
  const script = `
    const { createLogger } = require('rarch-logging');
    const log = createLogger({ service: ${JSON.stringify(service)}, bufferDir: ${JSON.stringify(tmp)} });
    console.log(log.level);
    log.info('filtered by the env level');
    log.error('from env url and key');`;
  const res = await node(['-e', script], {
    RARCH_LOGGING_URL: r.url, RARCH_LOGGING_API_KEY: r.key, RARCH_LOGGING_DEFAULT_LEVEL: 'error',
  });
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout.trim(), 'ERROR');
  const got = await entriesOf(service);
  assert.deepEqual(got.map((e) => e.message), ['from env url and key']);
  // An option given explicitly wins over the environment.
  const res2 = await node(['-e', `
    const { createLogger } = require('rarch-logging');
    console.log(createLogger({ service: 'x', level: 'warn', bufferDir: ${JSON.stringify(tmp)} }).level);`],
  { RARCH_LOGGING_DEFAULT_LEVEL: 'error', RARCH_LOGGING_URL: r.url });
  assert.equal(res2.stdout.trim(), 'WARN', res2.stderr);
  // A bad environment variable is a config error with the library's message.
  const res3 = await node(['-e', `
    const { createLogger } = require('rarch-logging');
    try { createLogger({ service: 'x', bufferDir: ${JSON.stringify(tmp)} }); }
    catch (e) { console.log(e.code + ' ' + e.message); }`],
  { RARCH_LOGGING_DEFAULT_LEVEL: 'chatty' });
  assert.match(res3.stdout, /^RARCH_ERR_CONFIG .*chatty/, res3.stderr);
});

test('the same API from import and require', async () => {
  const script = `
    import rarch, { createLogger, RarchError, Level, Status, version, libraryPath, closeAll } from 'rarch-logging';
    import { createRequire } from 'node:module';
    const cjs = createRequire(import.meta.url)('rarch-logging');
    if (cjs.createLogger !== createLogger || rarch.createLogger !== createLogger) throw new Error('two instances');
    if (cjs.RarchError !== RarchError) throw new Error('two error classes');
    const log = createLogger({ service: 'node-esm-${process.pid}', url: process.env.U, apiKey: process.env.K,
      bufferDir: ${JSON.stringify(tmp)} });
    log.info('from esm', { context: { esm: true } });
    await log.flush(10000);
    try { log.info('x', { context: [1] }); } catch (e) { console.log(e instanceof RarchError, e.code); }
    console.log(version(), Level.WARN, Status.RARCH_ERR_CLOSED, typeof libraryPath(), typeof closeAll);`;
  const res = await node(['--input-type=module', '-e', script], { U: r.url, K: r.key });
  assert.equal(res.code, 0, res.stderr);
  assert.deepEqual(res.stdout.trim().split('\n'), ['true RARCH_ERR_INVALID_JSON', '0.1.0 2 14 string function']);
  const got = await entriesOf(`node-esm-${process.pid}`);
  assert.deepEqual(got.map((e) => e.context), [{ esm: true }]);
});

test('library lookup: RARCH_LOGGING_LIB first, then the bundled copy, then the repo build; a failure lists every path tried', async () => {
  // The library these tests run with: $RARCH_LOGGING_LIB when it is given (the package copied
  // out of the repository), else the repo build.
  const repoLib = path.resolve(PKG, '..', '..', 'target', 'release', 'librarch_logging.so');
  const envLib = process.env.RARCH_LOGGING_LIB;
  const lib = envLib && fs.existsSync(envLib) ? envLib : repoLib;
  assert.ok(fs.existsSync(lib), `no library: set RARCH_LOGGING_LIB or run make lib (${repoLib})`);
  // A copy of the library through the variable.
  const copy = path.join(tmp, 'librarch_logging_copy.so');
  fs.copyFileSync(fs.realpathSync(lib), copy);
  const show = "console.log(require('rarch-logging').libraryPath())";
  let res = await node(['-e', show], { RARCH_LOGGING_LIB: copy });
  assert.equal(res.stdout.trim(), copy, res.stderr);
  // Inside the repository, a wrong variable falls through to the repo build.
  if (fs.existsSync(repoLib)) {
    res = await node(['-e', show], { RARCH_LOGGING_LIB: path.join(tmp, 'nope.so') });
    assert.equal(res.stdout.trim(), repoLib, res.stderr);
  }
  // The package outside the repository, as npm installs the packed tarball: its bundled copy
  // (prebuilds/<platform>-<arch>/) is found when the variable is wrong.
  const outside = path.join(tmp, 'pkg');
  fs.mkdirSync(outside, { recursive: true });
  for (const f of ['index.js', 'package.json']) fs.copyFileSync(path.join(PKG, f), path.join(outside, f));
  fs.cpSync(path.join(PKG, 'lib'), path.join(outside, 'lib'), { recursive: true });
  fs.symlinkSync(path.join(PKG, 'node_modules'), path.join(outside, 'node_modules'));
  const bundled = path.join(outside, 'prebuilds', `${process.platform}-${process.arch}`);
  fs.mkdirSync(bundled, { recursive: true });
  fs.copyFileSync(copy, path.join(bundled, 'librarch_logging.so'));
  const script = `
    const r = require(${JSON.stringify(outside)});
    try { r.createLogger({ service: 'x' }); console.log('loaded ' + r.libraryPath()); }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, tried: e.tried, isRarch: e instanceof r.RarchError })); }`;
  res = await node(['-e', script], { RARCH_LOGGING_LIB: path.join(tmp, 'nope.so') });
  assert.equal(res.stdout.trim(), 'loaded ' + path.join(bundled, 'librarch_logging.so'), res.stderr);
  // Without the bundled copy, a bad variable and no installed copy: a clear error.
  fs.rmSync(path.join(outside, 'prebuilds'), { recursive: true });
  res = await node(['-e', script], { RARCH_LOGGING_LIB: path.join(tmp, 'nope.so') });
  if (res.stdout.startsWith('loaded ')) {
    // An installed copy exists on this machine: it was found after the others, as designed.
    assert.doesNotMatch(res.stdout, /nope\.so|prebuilds/);
    return;
  }
  const e = JSON.parse(res.stdout);
  assert.equal(e.code, 'RARCH_ERR_LIBRARY_NOT_FOUND');
  assert.equal(e.isRarch, true);
  assert.match(e.message, /nope\.so \(\$RARCH_LOGGING_LIB\): not found/);
  assert.match(e.message, /prebuilds\/[a-z0-9]+-[a-z0-9]+\/librarch_logging\.so \(bundled\): not found/);
  assert.match(e.message, /target\/release\/librarch_logging\.so \(repo build\): not found/);
  assert.match(e.message, /librarch_logging\.so\.0 \(installed/);
  assert.match(e.message, /RARCH_LOGGING_LIB/);
  assert.ok(e.tried.length >= 5);
});

test('a logger left open in a child that is waiting on flush at process.exit() does not crash', async () => {
  const service = `node-exit-flush-${process.pid}`;
  const script = `
    const { createLogger } = require('rarch-logging');
    const log = createLogger({ service: ${JSON.stringify(service)}, bufferDir: ${JSON.stringify(tmp)},
      url: process.env.U, apiKey: process.env.K });
    for (let i = 0; i < 50; i++) log.info('e' + i);
    log.flush(10000);
    process.exit(0);`;
  const res = await node(['-e', script], { U: r.url, K: r.key });
  assert.equal(res.code, 0, res.stderr);
  await waitFor('50 entries', async () => (await entriesOf(service)).length === 50, 10000);
});
