'use strict';
// The binding's tables against rarch_logging.h: the statuses (index.js, index.d.ts), the option
// keys (lib/tables.js, index.d.ts and the defaults its comments give) and the fields of
// rarch_statistics (lib/tables.js, index.d.ts, stats()). The header is looked for in
// $RARCH_LOGGING_INCLUDE, beside the loaded library (<prefix>/lib -> <prefix>/include) and in
// the repository; without it these tests are skipped, saying so.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const rarch = require('rarch-logging');
const { STATUS_NAMES, OPTION_KEYS, STAT_FIELDS, camel } = require('../lib/tables.js');

function findHeader() {
  const dirs = [];
  if (process.env.RARCH_LOGGING_INCLUDE) dirs.push(process.env.RARCH_LOGGING_INCLUDE);
  try {
    dirs.push(path.join(path.dirname(path.resolve(rarch.libraryPath())), '..', 'include'));
  } catch (e) {
    // no library: the other tests say so
  }
  dirs.push(path.resolve(__dirname, '..', '..', '..', 'include'));
  const tried = dirs.map((d) => path.join(d, 'rarch_logging.h'));
  return { file: tried.find((f) => fs.existsSync(f)), tried };
}

const { file, tried } = findHeader();
const header = file ? fs.readFileSync(file, 'utf8') : null;
const skip = file ? false : `rarch_logging.h not found (set RARCH_LOGGING_INCLUDE); tried ${tried.join(', ')}`;

function between(text, start, end) {
  const i = text.indexOf(start);
  assert.ok(i >= 0, `no ${start} in ${file}`);
  const j = text.indexOf(end, i);
  assert.ok(j >= 0, `no ${end} after ${start} in ${file}`);
  return text.slice(i, j);
}

/** [name, value] of enum rarch_status. */
function headerStatuses() {
  return [...between(header, 'typedef enum rarch_status {', '} rarch_status;')
    .matchAll(/^\s*(RARCH_\w+) = (\d+),?$/gm)].map((m) => [m[1], Number(m[2])]);
}

/** [key, text in brackets] of the list of options in the comment of rarch_options_set. */
function headerOptions() {
  return [...between(header, 'Sets one option', 'enum rarch_status rarch_options_set(')
    .matchAll(/^ \* - `(\w+)` \(([^)]*)\)/gm)].map((m) => [m[1], m[2]]);
}

/** The fields of struct rarch_statistics. */
function headerStatFields() {
  return [...between(header, 'typedef struct rarch_statistics {', '} rarch_statistics;')
    .matchAll(/^\s+\w+ (\w+);$/gm)].map((m) => m[1]);
}

const dts = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8');

/** name -> the doc comment just before it, of the members of a block of index.d.ts. */
function dtsMembers(start) {
  const block = between(dts, start, '\n}');
  const out = new Map();
  for (const m of block.matchAll(/\/\*\*((?:[^*]|\*(?!\/))*)\*\/\s*(\w+)\??:/g)) out.set(m[2], m[1]);
  return out;
}

test('statuses: index.js and index.d.ts have the header\'s names and values', { skip }, () => {
  const h = headerStatuses();
  assert.ok(h.length >= 16);
  assert.deepEqual(STATUS_NAMES.map((n, i) => [n, i]), h);
  assert.deepEqual(Object.entries(rarch.Status), h);
  const inDts = [...between(dts, 'export declare const Status: Readonly<{', '}>;')
    .matchAll(/(RARCH_\w+): (\d+);/g)].map((m) => [m[1], Number(m[2])]);
  assert.deepEqual(inDts, h);
});

test('options: every key of the header, in camelCase, with its default in index.d.ts', { skip }, () => {
  const h = headerOptions();
  assert.ok(h.length >= 20);
  assert.deepEqual(OPTION_KEYS, h.map(([k]) => k));
  const docs = dtsMembers('export interface LoggerOptions {');
  assert.deepEqual([...docs.keys()], h.map(([k]) => camel(k)), 'LoggerOptions in index.d.ts');
  const wrong = [];
  for (const [key, text] of h) {
    const doc = docs.get(camel(key)).replace(/\s*\n\s*\*\s*/g, ' ');
    // `(ENV, default)` in the header is `(env ENV, default ...)` here.
    const [, env, def] = /^(?:((?:RARCH|OTEL)_\w+), )?(.*)$/.exec(text);
    const want = env ? `\`${key}\` (env ${env}, default ` : `\`${key}\` (default `;
    const i = doc.indexOf(want);
    const after = i < 0 ? '' : doc.slice(i + want.length);
    if (!after.startsWith(`${def})`) && !after.startsWith(`\`${def}\`)`)) {
      wrong.push(`${camel(key)}: want "${want}${def})", got: ${doc.trim()}`);
    }
  }
  assert.deepEqual(wrong, [], 'the doc comments of LoggerOptions in index.d.ts');
  // An unknown key is refused, and the message lists every known one.
  assert.throws(() => rarch.createLogger({ service: 's', noSuchOption: 1 }), (e) => {
    assert.equal(e.code, 'RARCH_ERR_CONFIG');
    for (const [k] of h) assert.match(e.message, new RegExp(`\\b${camel(k)}\\b`));
    return true;
  });
});

test('options: README.md\'s table has every key of the header, with its variable and default', { skip }, () => {
  const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
  const rows = between(readme, '| option | C key | environment | default |', '\n\n')
    .split('\n').slice(2).map((l) => l.split('|').slice(1, -1).map((c) => c.trim().replace(/`/g, '')));
  const h = headerOptions();
  assert.deepEqual(rows.map((r) => [r[0], r[1]]), h.map(([k]) => [camel(k), k]), 'README.md: option, C key');
  const wrong = [];
  for (const [[key, text], [, , env, def]] of h.map((o, i) => [o, rows[i]])) {
    const [, hEnv, hDef] = /^(?:((?:RARCH|OTEL)_\w+), )?(.*)$/.exec(text);
    if (env !== (hEnv || '')) wrong.push(`${key}: environment ${env}, the header's ${hEnv}`);
    // An empty default is described in words; any other is the value, maybe followed by more.
    if (!hDef.startsWith('empty') && def !== hDef && !def.startsWith(`${hDef} `)) {
      wrong.push(`${key}: default ${def}, the header's ${hDef}`);
    }
  }
  assert.deepEqual(wrong, [], 'README.md\'s table of options');
});

test('stats: the fields of rarch_statistics, in camelCase, in index.d.ts and stats()', { skip }, async () => {
  const h = headerStatFields();
  assert.equal(h[0], 'size');
  assert.deepEqual(STAT_FIELDS, h.slice(1));
  assert.deepEqual([...dtsMembers('export interface LoggerStats {').keys()], STAT_FIELDS.map(camel));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rarch-node-tables-'));
  const log = rarch.createLogger({ service: 'tables', url: 'http://127.0.0.1:9/log', bufferDir: dir,
    closeTimeoutMs: 0 });
  try {
    assert.deepEqual(Object.keys(log.stats()), STAT_FIELDS.map(camel));
  } finally {
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('events: the kinds of rarch_event_kind, in camelCase, are the event names; rarch_event\'s layout', { skip }, () => {
  const { EVENT_NAMES, KIND_NAMES } = require('../lib/events.js');
  const kinds = [...between(header, 'typedef enum rarch_event_kind {', '} rarch_event_kind;')
    .matchAll(/^\s*RARCH_EVENT_(\w+) = (\d+),?$/gm)].map((m) => [m[1], Number(m[2])]);
  assert.equal(kinds.length, 8);
  for (const [name, value] of kinds) assert.equal(KIND_NAMES[value], camel(name.toLowerCase()));
  assert.deepEqual(EVENT_NAMES, [...KIND_NAMES.slice(1), 'event']);
  const fields = [...between(header, 'typedef struct rarch_event {', '} rarch_event;')
    .matchAll(/^\s+(?:int|uint64_t|char) (\w+)(?:\[\d+\])?;$/gm)].map((m) => m[1]);
  assert.deepEqual(fields, ['kind', 'status', 'count', 'time_unix_ms', 'request_id', 'message']);
});
