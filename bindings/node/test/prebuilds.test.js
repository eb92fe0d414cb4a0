'use strict';
// Which prebuilds/ directory of the release's npm package the loader picks: by platform, by
// architecture and, on Linux, by C library (glibc or musl).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { linuxLibc, prebuildName, bundledDir } = require('../lib/native.js');

test('prebuilds/ names: linux-x64, linux-arm64, linux-x64-musl', () => {
  assert.equal(prebuildName('linux', 'x64', 'glibc'), 'linux-x64');
  assert.equal(prebuildName('linux', 'arm64', 'glibc'), 'linux-arm64');
  assert.equal(prebuildName('linux', 'x64', 'musl'), 'linux-x64-musl');
  assert.equal(prebuildName('linux', 'arm64', 'musl'), 'linux-arm64-musl');
  assert.equal(prebuildName('darwin', 'arm64', undefined), 'darwin-arm64');
});

test('the C library: from the report, else from musl\'s loader', () => {
  const none = () => false;
  const musl = (f) => /^\/lib\/ld-musl-[a-z0-9_]+\.so\.1$/.test(f);
  // glibc's Node reports the glibc it runs on, whatever files are around.
  assert.equal(linuxLibc({ header: { glibcVersionRuntime: '2.17' } }, musl), 'glibc');
  // musl's Node has no glibcVersionRuntime in its report.
  assert.equal(linuxLibc({ header: { osName: 'Linux' } }, none), 'musl');
  // No report (null): musl's dynamic loader decides.
  assert.equal(linuxLibc(null, musl), 'musl');
  assert.equal(linuxLibc(null, none), 'glibc');
});

test('this process: its own C library and directory', () => {
  const report = process.report.getReport();
  const libc = report.header.glibcVersionRuntime ? 'glibc' : 'musl';
  assert.equal(linuxLibc(), libc);
  const dir = `linux-${process.arch}${libc === 'musl' ? '-musl' : ''}`;
  assert.equal(path.basename(bundledDir()), dir);
});
