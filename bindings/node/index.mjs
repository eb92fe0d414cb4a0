// ES module entry: the same instance as require('rarch-logging') (one registry of open loggers).
import cjs from './index.js';

export const {
  createLogger, closeAll, version, libraryPath, RarchError, Level, Status, Logger,
} = cjs;
export default cjs;
