"""A `logging.Handler` that ships standard-library log records through librarch_logging."""

import datetime as _dt
import logging
import threading

from ._native import NativeLogger
from .events import EventSource
from .log_levels import LOG_LEVEL_DEBUG

__all__ = ["RarchHandler"]

# Attributes every LogRecord has: anything else in record.__dict__ came from `extra=`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName"}
_ENTRY_FIELDS = ("user_id", "tenant_id", "request_id", "client_log_datetime")
_UTC = _dt.timezone.utc


def native_level(levelno):
    """logging's level number to the protocol's level (0 DEBUG .. 4 FATAL)."""
    if levelno < logging.INFO:
        return 0
    if levelno < logging.WARNING:
        return 1
    if levelno < logging.ERROR:
        return 2
    if levelno < logging.CRITICAL:
        return 3
    return 4


class RarchHandler(logging.Handler, EventSource):
    """Sends each record as one entry.

    - `level`: DEBUG/INFO/WARNING/ERROR/CRITICAL map to DEBUG/INFO/WARN/ERROR/FATAL.
    - `service`: the entry's service; `logger_name` defaults to the record's logger name.
    - message: `self.format(record)` (the traceback is included when there is one).
    - `extra=`: `user_id`, `tenant_id`, `request_id` and `client_log_datetime` become those
      fields; `context` (a dict) is the context, and every other extra key is added to it.
      Without `client_log_datetime`, the record's creation time is sent.
    - Only `logging`'s level decides: the native level is DEBUG, whatever
      RARCH_LOGGING_DEFAULT_LEVEL says.
    """

    def __init__(self, service, logger_name=None, level=logging.NOTSET, *, options=None):
        super().__init__(level)
        self.service = service
        self.fixed_name = logger_name
        self._opts = dict(options or {})
        self._opts.setdefault("level", LOG_LEVEL_DEBUG)
        self._natives = {}
        self._natives_lock = threading.Lock()
        # Fails now (not at the first record) if the service or an option is bad.
        self._native(logger_name or service)

    def _native(self, name):
        nl = self._natives.get(name)
        if nl is None or nl.closed:
            with self._natives_lock:
                nl = self._natives.get(name)
                if nl is None or nl.closed:
                    nl = NativeLogger(self.service, name, self._opts)
                    self._natives[name] = nl
        return nl

    def handle(self, record):
        # The library is thread-safe: no handler lock around emit.
        rv = self.filter(record)
        if isinstance(rv, logging.LogRecord):  # Python 3.12+ filters may return a record
            record = rv
        if rv:
            self.emit(record)
        return rv

    def emit(self, record):
        try:
            message = self.format(record)
            d = record.__dict__
            context = None
            fields = {}
            for k, v in d.items():
                if k in _STANDARD:
                    continue
                if k in _ENTRY_FIELDS:
                    fields[k] = v
                elif k == "context":
                    if isinstance(v, dict):
                        context = dict(v) if context is None else {**v, **context}
                    elif v is not None:
                        context = context or {}
                        context.setdefault("context", v)
                else:
                    if context is None:
                        context = {}
                    context[k] = v
            when = fields.get("client_log_datetime") or _dt.datetime.fromtimestamp(
                record.created, _UTC)
            nl = self._native(self.fixed_name or record.name or self.service)
            nl.log(native_level(record.levelno), message, fields.get("user_id"),
                   fields.get("tenant_id"), fields.get("request_id"), context, when)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def flush(self, timeout=10.0):
        """Waits (GIL released) until what was logged is delivered; True if it was."""
        ok = True
        for nl in list(self._natives.values()):
            if not nl.closed:
                ok = nl.flush(int(timeout * 1000)) == 0 and ok
        if self._events is not None:
            self._events.poke()
        return ok

    def _events_native(self):
        # Every logger name of a handler shares one pipeline, hence its events.
        return self._natives.get(self.fixed_name or self.service)

    def close(self):
        if self._events is not None:
            self._events.close()
        with self._natives_lock:
            natives, self._natives = list(self._natives.values()), {}
        for nl in natives:
            nl.close()
        super().close()
