"""`Logger`: the Python client's simple logger, backed by a native rarch_logger."""

import inspect

from ._native import (
    ERR_TIMED_OUT,
    OK,
    NativeLogger,
    RarchError,
    _fast_encode,
    _otel_trace,
    context_json,
    current_traceparent,
    last_error,
    timestamp,
    to_bytes,
)
from .events import EventSource
from .log_levels import (
    LOG_LEVEL_DEBUG,
    LOG_LEVEL_ERROR,
    LOG_LEVEL_FATAL,
    LOG_LEVEL_INFO,
    LOG_LEVEL_WARN,
    LOG_LEVELS,
    level_number,
)

__all__ = ["Logger", "should_log"]


_REQUIRED = object()


def _slow_message(message, name):
    if message is _REQUIRED:
        raise TypeError(f"{name}() missing 1 required positional argument: 'message'")
    return to_bytes(message)


def _emitter(owner, level, message_default=_REQUIRED):
    """The hot path of one level method, as a closure stored on the instance (one Python frame
    per call instead of two). Equivalent to `owner._native.log(level, ...)`."""

    name = ("debug", "info", "warn", "error", "fatal")[level]

    def emit(message=message_default, *, user_id=None, tenant_id=None, request_id=None, context=None,
             client_log_datetime=None):
        nl = owner._native
        if level < nl.level:
            return
        if _otel_trace is not None and current_traceparent() is not None:
            # The current span's trace: the native logger's path takes it.
            owner._log(level, message, user_id, tenant_id, request_id, context,
                       client_log_datetime)
            return
        try:
            m = message.encode() if type(message) is str else _slow_message(message, name)
            u = None if user_id is None else (
                user_id.encode() if type(user_id) is str else to_bytes(user_id))
            t = None if tenant_id is None else (
                tenant_id.encode() if type(tenant_id) is str else to_bytes(tenant_id))
            r = None if request_id is None else (
                request_id.encode() if type(request_id) is str else to_bytes(request_id))
        except UnicodeEncodeError:
            m, u, t, r = (to_bytes(x) for x in (message, user_id, tenant_id, request_id))
        if not context:
            c = None
        elif type(context) is dict:
            try:
                c = "".join(_fast_encode(context, 0)).encode()
            except Exception:
                c = context_json(context)
        else:
            c = context_json(context)
        d = None if client_log_datetime is None else timestamp(client_log_datetime)
        if m is None or b"\0" in m or (u and b"\0" in u) or (t and b"\0" in t) or (
                r and b"\0" in r) or (d and b"\0" in d) or nl._h is None:
            owner._log(level, message, user_id, tenant_id, request_id, context,
                       client_log_datetime)
            return
        inf = nl._inflight
        inf.append(None)
        try:
            st = nl._logfn(nl._h, level, m, u, t, r, c, d)
        finally:
            inf.pop()
        if st:
            if nl._h is None:  # closed meanwhile: go through the reopening path
                owner._log(level, message, user_id, tenant_id, request_id, context,
                           client_log_datetime)
            else:
                nl._report(st)

    emit.__name__ = emit.__qualname__ = name
    # Introspection shows the method's signature, not the sentinel default.
    sig = inspect.signature(getattr(type(owner), name))
    emit.__signature__ = sig.replace(parameters=list(sig.parameters.values())[1:])
    emit.__doc__ = getattr(type(owner), name).__doc__
    return emit


def should_log(configured_level, message_level):
    """True if `message_level` is at or above `configured_level` (as in the Python client)."""
    return level_number(message_level) >= level_number(configured_level)


class Logger(EventSource):
    """Sends structured entries through librarch_logging.

    Same constructor and methods as the Python client's `Logger`. `level=None` takes
    RARCH_LOGGING_DEFAULT_LEVEL (default DEBUG); the URL and key come from RARCH_LOGGING_URL and
    RARCH_LOGGING_API_KEY. Extra keyword-only arguments: `mode` ("threaded", the default, or
    "blocking") and `options` (a dict of any rarch_options_set key, e.g. {"buffer_dir": ...},
    or {"sink": "otlp"} for OTLP/HTTP logs to an OpenTelemetry Collector).

    The methods never raise for delivery problems: like the Python client, a failure is printed
    to stderr as "[LOGGING ERROR] ..." (at most once a second per logger).
    """

    def __init__(self, service, level=None, logger_name=None, *, mode=None, options=None):
        opts = dict(options or {})
        if level is not None:
            opts["level"] = LOG_LEVELS[level_number(level)]
        if mode is not None:
            opts["mode"] = mode
        self.service = service
        self.logger_name = logger_name or service
        self._opts = opts
        self._native = NativeLogger(service, logger_name, opts)
        self._log = self._native.log
        # Instance attributes shadow the methods below (same signatures), saving a frame.
        md = self._message_default
        self.debug = _emitter(self, 0, md)
        self.info = _emitter(self, 1, md)
        self.warn = self.warning = _emitter(self, 2, md)
        self.error = _emitter(self, 3, md)
        self.fatal = _emitter(self, 4, md)

    _message_default = _REQUIRED

    # -- level ----------------------------------------------------------------------------
    @property
    def level(self):
        """The level as a string ("DEBUG" .. "FATAL"); assigning one changes it at run time."""
        return LOG_LEVELS[self._native.level]

    @level.setter
    def level(self, value):
        self._native.set_level(level_number(value))

    # -- logging --------------------------------------------------------------------------
    def _send(self, level, message, user_id=None, tenant_id=None, request_id=None, context=None,
              client_log_datetime=None):
        """The Python client's internal entry point (level as a string); returns the status."""
        return self._log(level_number(level), message, user_id, tenant_id, request_id, context,
                         client_log_datetime)

    def debug(self, message, *, user_id=None, tenant_id=None, request_id=None, context=None,
              client_log_datetime=None):
        self._log(0, message, user_id, tenant_id, request_id, context, client_log_datetime)

    def info(self, message, *, user_id=None, tenant_id=None, request_id=None, context=None,
             client_log_datetime=None):
        self._log(1, message, user_id, tenant_id, request_id, context, client_log_datetime)

    def warn(self, message, *, user_id=None, tenant_id=None, request_id=None, context=None,
             client_log_datetime=None):
        self._log(2, message, user_id, tenant_id, request_id, context, client_log_datetime)

    warning = warn

    def error(self, message, *, user_id=None, tenant_id=None, request_id=None, context=None,
              client_log_datetime=None):
        self._log(3, message, user_id, tenant_id, request_id, context, client_log_datetime)

    def fatal(self, message, *, user_id=None, tenant_id=None, request_id=None, context=None,
              client_log_datetime=None):
        self._log(4, message, user_id, tenant_id, request_id, context, client_log_datetime)

    # -- beyond the Python client ----------------------------------------------------------
    def flush(self, timeout=10.0):
        """Waits up to `timeout` seconds (the GIL is released) until every entry logged so far
        is delivered. Returns True if it was, False on timeout (nothing is dropped: entries
        stay queued or in the disk buffer). Logging keeps working during and after a flush."""
        st = self._native.flush(int(timeout * 1000))
        if self._events is not None:
            self._events.poke()
        if st == OK:
            return True
        if st == ERR_TIMED_OUT or self._native.closed:
            return False
        raise RarchError(st, last_error())

    def close(self):
        """Frees the native logger (the last one of a pipeline delivers for up to
        close_timeout_ms, then writes the rest to the disk buffer). A later log call opens a
        new one, so a closed logger never loses entries. The on_event thread polls a last time
        and stops (it resumes if the logger is opened again)."""
        if self._events is not None:
            self._events.close()
        self._native.close()
        self._log = self._reopen_and_log

    def _reopen_and_log(self, *args):
        level = self._native.level
        self._native = NativeLogger(self.service, self.logger_name, self._opts)
        self._native.set_level(level)
        self._log = self._native.log
        if self._events is not None:
            self._events.reopen()
        return self._log(*args)

    def stats(self):
        """The counters of this logger's pipeline (rarch_statistics) as a dict."""
        return self._native.stats()

    def _events_native(self):
        return self._native

    def __repr__(self):
        return (f"<{type(self).__name__} service={self.service!r} "
                f"logger_name={self.logger_name!r} level={self.level}>")
