'use strict';
// example.js: logs at every level and exits, without calling flush() or close(): the binding
// closes open loggers when the process exits, which delivers what is queued (within the close
// timeout) and writes anything undeliverable to the disk buffer.
//
// The endpoint and the key come from the environment, read by the library itself:
//   RARCH_LOGGING_URL=http://127.0.0.1:8080/log RARCH_LOGGING_API_KEY=secret node example.js

const os = require('node:os');
const path = require('node:path');
const { createLogger, RarchError, version } = require('rarch-logging');

const log = createLogger({
  service: 'node-example',
  loggerName: 'example',
  // The disk buffer (used only if the server cannot be reached); default ./var/log.
  bufferDir: path.join(os.tmpdir(), 'rarch-logging-example'),
});

console.log(`rarch-logging ${version()}: sending to ${process.env.RARCH_LOGGING_URL || 'the default URL'}`);

const user = { userId: 'user_123', tenantId: 'tenant_abc' };
log.debug('cache warmed', { context: { entries: 1200 } });
log.info('order placed', { ...user, requestId: 'req_456', context: { orderId: 42, total: 99.5 } });
log.warn('payment slow', { ...user, context: { ms: 1800, provider: 'acme' } });
log.error('payment failed', { ...user, context: { code: 'card_declined' }, time: new Date() });
log.fatal('shutting down', { context: { reason: 'example done' } });

// Bad input is reported as a RarchError carrying the C status name, never a crash.
try {
  log.info('bad context', { context: [1, 2, 3] });
} catch (e) {
  if (!(e instanceof RarchError)) throw e;
  console.log(`rejected as expected: ${e.code}: ${e.message}`);
}

console.log('logged 5 entries; exiting (they are delivered on exit)');
