'use strict';

/** An error of rarch-logging: `code` is the status name, `status` its value. */
class RarchError extends Error {
  constructor(code, message, status) {
    super(message);
    this.name = 'RarchError';
    this.code = code;
    this.status = status;
  }
}

module.exports = { RarchError };
