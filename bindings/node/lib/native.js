'use strict';
// The FFI layer: finds and loads librarch_logging, declares its functions with koffi.
// Internal: the public API is in ../index.js.

const fs = require('node:fs');
const path = require('node:path');
const koffi = require('koffi');
const { RarchError } = require('./errors.js');
const { STAT_FIELDS } = require('./tables.js');

const LIB_ENV = 'RARCH_LOGGING_LIB';

function libFileNames() {
  switch (process.platform) {
    case 'darwin': return ['librarch_logging.dylib', 'librarch_logging.0.dylib'];
    case 'win32': return ['rarch_logging.dll'];
    default: return ['librarch_logging.so', 'librarch_logging.so.0'];
  }
}

// The C library this process runs on, on Linux: 'glibc' or 'musl' (Alpine). Node's report
// names the glibc it runs on (header.glibcVersionRuntime) and has no such field on musl, so a
// report without it means musl. Without a report (a restricted runtime), musl's dynamic loader
// (/lib/ld-musl-<arch>.so.1) decides; it is not asked first because a glibc system may have
// it too (Debian's musl-tools).
function nodeReport() {
  const rep = process.report;
  if (!rep || typeof rep.getReport !== 'function') return null;
  // Network handles would make the report look up host names: leave them out.
  const prev = rep.excludeNetwork;
  try {
    rep.excludeNetwork = true;
    return rep.getReport();
  } catch {
    return null;
  } finally {
    rep.excludeNetwork = prev;
  }
}

function linuxLibc(report = nodeReport(), exists = fs.existsSync) {
  const header = report && report.header;
  if (header) return header.glibcVersionRuntime ? 'glibc' : 'musl';
  const loader = { x64: 'x86_64', arm64: 'aarch64' }[process.arch] || process.arch;
  return exists(`/lib/ld-musl-${loader}.so.1`) ? 'musl' : 'glibc';
}

// The prebuilds/ directory for a platform: prebuildify's names, <platform>-<arch>, with
// "-musl" for a musl Linux (linux-x64, linux-arm64, linux-x64-musl).
function prebuildName(platform, arch, libc) {
  return `${platform}-${arch}${platform === 'linux' && libc === 'musl' ? '-musl' : ''}`;
}

// The copy of the library that a packed package carries (`make dist` puts it there):
// prebuilds/<platform>-<arch>[-musl]/ inside the package.
function bundledDir() {
  const libc = process.platform === 'linux' ? linuxLibc() : undefined;
  return path.resolve(__dirname, '..', 'prebuilds', prebuildName(process.platform, process.arch, libc));
}

// Debian's library directory (where the .deb installs), for the loader-less fallback.
function multiarchDirs() {
  const triplet = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' }[process.arch];
  return triplet ? [`/usr/lib/${triplet}`] : [];
}

// Where the library is looked for, in order: $RARCH_LOGGING_LIB, the copy bundled in the
// package, the repo's build (target/release, two levels above this package), then an
// installed copy (the dynamic loader's own search by bare name, then the usual prefixes).
function candidates() {
  const out = [];
  const env = process.env[LIB_ENV];
  if (env) out.push({ how: `$${LIB_ENV}`, file: env });
  const names = libFileNames();
  out.push({ how: 'bundled', file: path.join(bundledDir(), names[0]) });
  const repo = path.resolve(__dirname, '..', '..', '..', 'target', 'release');
  out.push({ how: 'repo build', file: path.join(repo, names[0]) });
  for (const n of names.slice().reverse()) out.push({ how: 'installed (loader search)', file: n });
  const dirs = process.platform === 'darwin'
    ? ['/usr/local/lib', '/opt/homebrew/lib']
    : ['/usr/local/lib', ...multiarchDirs(), '/usr/lib', '/usr/lib64'];
  for (const dir of dirs) {
    for (const n of names) out.push({ how: 'installed', file: path.join(dir, n) });
  }
  return out;
}

// Opaque handles: koffi 3 represents pointers as BigInt values; they never leave index.js.
koffi.opaque('rarch_logger');
koffi.opaque('rarch_options');
// The structs of the header, with the platform's C layout.
const rarch_str = koffi.struct('rarch_str', { ptr: 'const char *', len: 'size_t' });
const rarch_entry = koffi.struct('rarch_entry', {
  message: rarch_str,
  user_id: rarch_str,
  tenant_id: rarch_str,
  request_id: rarch_str,
  context_json: rarch_str,
  client_log_datetime: rarch_str,
});
const rarch_statistics = koffi.struct('rarch_statistics', {
  size: 'size_t',
  ...Object.fromEntries(STAT_FIELDS.map((f) => [f, 'uint64_t'])),
});
// rarch_event: read from a Buffer by lib/events.js at the offsets koffi computes.
const rarch_event = koffi.struct('rarch_event', {
  kind: 'int',
  status: 'int',
  count: 'uint64_t',
  time_unix_ms: 'uint64_t',
  request_id: koffi.array('char', 64),
  message: koffi.array('char', 256),
});
const EVENT_LAYOUT = Object.freeze({
  size: koffi.sizeof(rarch_event),
  kind: koffi.offsetof(rarch_event, 'kind'),
  status: koffi.offsetof(rarch_event, 'status'),
  count: koffi.offsetof(rarch_event, 'count'),
  time: koffi.offsetof(rarch_event, 'time_unix_ms'),
  requestId: koffi.offsetof(rarch_event, 'request_id'),
  requestIdLen: 64,
  message: koffi.offsetof(rarch_event, 'message'),
  messageLen: 256,
});

let native = null;

class LibraryNotFoundError extends RarchError {
  constructor(message, tried) {
    super('RARCH_ERR_LIBRARY_NOT_FOUND', message, undefined);
    this.tried = tried;
  }
}

function load() {
  if (native) return native;
  const tried = [];
  for (const c of candidates()) {
    // Absolute paths that do not exist are reported as such, without asking the loader.
    if (path.isAbsolute(c.file) && !fs.existsSync(c.file)) {
      tried.push(`${c.file} (${c.how}): not found`);
      continue;
    }
    let lib;
    try {
      lib = koffi.load(c.file);
    } catch (e) {
      tried.push(`${c.file} (${c.how}): ${e.message}`);
      continue;
    }
    try {
      native = declare(lib, c.file);
    } catch (e) {
      tried.push(`${c.file} (${c.how}): loaded but unusable: ${e.message}`);
      continue;
    }
    return native;
  }
  throw new LibraryNotFoundError(
    'rarch-logging: cannot load librarch_logging. Tried, in order:\n  ' + tried.join('\n  ') +
      `\nSet ${LIB_ENV} to the library's path, install the release package (its npm tarball ` +
      'carries the linux-x64, linux-arm64 and linux-x64-musl libraries), run `make lib` in the ' +
      'repository, or install the library ' +
      '(`make install`, the tarball or the .deb).',
    tried);
}

function declare(lib, file) {
  const n = {
    file,
    koffi,
    version: lib.func('const char *rarch_version(void)'),
    status_str: lib.func('const char *rarch_status_str(int status)'),
    // buf is a Node Buffer: koffi passes its memory directly.
    last_error: lib.func('size_t rarch_last_error(void *buf, size_t len)'),
    options_new: lib.func('rarch_options *rarch_options_new(void)'),
    options_set: lib.func('int rarch_options_set(rarch_options *opts, const char *key, const char *value)'),
    options_free: lib.func('void rarch_options_free(rarch_options *opts)'),
    // The logger comes back through `out`.
    logger_open: lib.func('int rarch_logger_open(const char *service, const char *logger_name, const rarch_options *opts, _Out_ rarch_logger **out)'),
    logger_free: lib.func('void rarch_logger_free(rarch_logger *logger)'),
    // The hot path: the entry is a Buffer laid out as rarch_entry (filled by index.js) and
    // passed by address, so koffi converts nothing but the handle and the level.
    log_n_raw: lib.func('int rarch_log_n(rarch_logger *logger, int level, const void *entry)'),
    // The same with a W3C traceparent (a JS string, passed NUL-terminated by koffi).
    log_traced_raw: lib.func('int rarch_log_traced(rarch_logger *logger, int level, const void *entry, const char *traceparent)'),
    flush: lib.func('int rarch_flush(rarch_logger *logger, uint32_t timeout_ms)'),
    // The same, with the message copied into msg (a Buffer) with the status: for async calls.
    flush_msg: lib.func('int rarch_flush_msg(rarch_logger *logger, uint32_t timeout_ms, void *msg, size_t len)'),
    set_level: lib.func('int rarch_set_level(rarch_logger *logger, int level)'),
    get_level: lib.func('int rarch_get_level(const rarch_logger *logger)'),
    stats: lib.func('int rarch_stats(const rarch_logger *logger, _Inout_ rarch_statistics *out)'),
    statsSize: koffi.sizeof(rarch_statistics),
    // out is a Buffer of max * event_size bytes (event_size: EVENT_LAYOUT.size).
    poll_events: lib.func('size_t rarch_poll_events(rarch_logger *logger, void *out, size_t max, size_t event_size)'),
    eventLayout: EVENT_LAYOUT,
    entrySize: koffi.sizeof(rarch_entry),
  };
  const v = n.version();
  if (typeof v !== 'string' || !/^0\./.test(v)) {
    throw new Error(`library version ${v} is not 0.x, which this binding was written for`);
  }
  if (n.entrySize !== 6 * 2 * 8 && koffi.sizeof('size_t') === 8) {
    throw new Error(`unexpected sizeof(rarch_entry) ${n.entrySize}`);
  }
  return n;
}

module.exports = { load, candidates, bundledDir, linuxLibc, prebuildName, LibraryNotFoundError };
