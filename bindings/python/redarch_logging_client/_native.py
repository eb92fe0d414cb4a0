"""ctypes binding of librarch_logging.so (see include/rarch_logging.h in the repository).

Everything the rest of the package needs from the C library goes through this module: finding
and loading the library, the status codes, options, and `NativeLogger`, which owns one
`rarch_logger *` and guards it so that it is never used after `rarch_logger_free` (also by a
daemon thread racing the interpreter's exit).
"""

import atexit
import ctypes
import datetime as _dt
import json
import os
import re
import sys
import threading
import time
import weakref
from json.encoder import c_make_encoder, encode_basestring

try:
    # Optional: with the OpenTelemetry API installed, entries carry the current span's trace.
    from opentelemetry import trace as _otel_trace
except ImportError:
    _otel_trace = None

__all__ = [
    "RarchError",
    "NativeLogger",
    "find_library",
    "library_path",
    "version",
    "STATUS_NAMES",
]

LIB_ENV = "RARCH_LOGGING_LIB"
_LIB_NAME = "librarch_logging.so"
_HERE = os.path.dirname(os.path.abspath(__file__))

# rarch_status values (rarch_logging.h).
OK = 0
ERR_NULL_ARGUMENT = 1
ERR_INVALID_ARGUMENT = 2
ERR_INVALID_LEVEL = 3
ERR_INVALID_UTF8 = 4
ERR_INVALID_JSON = 5
ERR_INVALID_TIMESTAMP = 6
ERR_CONFIG = 7
ERR_QUEUE_FULL = 8
ERR_TIMED_OUT = 9
ERR_IO = 10
ERR_TRANSPORT = 11
ERR_AUTH = 12
ERR_REJECTED = 13
ERR_CLOSED = 14
ERR_PANIC = 15

STATUS_NAMES = {
    0: "RARCH_OK",
    1: "RARCH_ERR_NULL_ARGUMENT",
    2: "RARCH_ERR_INVALID_ARGUMENT",
    3: "RARCH_ERR_INVALID_LEVEL",
    4: "RARCH_ERR_INVALID_UTF8",
    5: "RARCH_ERR_INVALID_JSON",
    6: "RARCH_ERR_INVALID_TIMESTAMP",
    7: "RARCH_ERR_CONFIG",
    8: "RARCH_ERR_QUEUE_FULL",
    9: "RARCH_ERR_TIMED_OUT",
    10: "RARCH_ERR_IO",
    11: "RARCH_ERR_TRANSPORT",
    12: "RARCH_ERR_AUTH",
    13: "RARCH_ERR_REJECTED",
    14: "RARCH_ERR_CLOSED",
    15: "RARCH_ERR_PANIC",
}


class RarchError(Exception):
    """A failed call into librarch_logging: `status` is the rarch_status, `message` its text."""

    def __init__(self, status, message=""):
        self.status = status
        self.status_name = STATUS_NAMES.get(status, f"status {status}")
        self.message = message
        super().__init__(f"{self.status_name}: {message}" if message else self.status_name)


# ---------------------------------------------------------------------------------------------
# Finding and loading the library
# ---------------------------------------------------------------------------------------------


def _candidates():
    """The places searched, in order: $RARCH_LOGGING_LIB, the package's copy, the repo's build."""
    out = []
    env = os.environ.get(LIB_ENV)
    if env:
        out.append(("$" + LIB_ENV, env))
    out.append(("package copy", os.path.join(_HERE, "_lib", _LIB_NAME)))
    # Running from the source tree (bindings/python/redarch_logging_client): the repo's build.
    repo = os.path.abspath(os.path.join(_HERE, "..", "..", ".."))
    out.append(("repository build", os.path.join(repo, "target", "release", _LIB_NAME)))
    return out


def find_library():
    """Returns the path of the library to load, or raises ImportError listing every path tried."""
    tried = []
    for what, path in _candidates():
        if os.path.isfile(path):
            return path
        tried.append(f"  {what}: {path} (not found)")
    raise ImportError(
        "redarch_logging_client: cannot find librarch_logging.so. Tried:\n"
        + "\n".join(tried)
        + f"\nSet {LIB_ENV} to the library's path, or reinstall the package "
        "(pip install ./bindings/python builds and bundles it)."
    )


def _load():
    path = find_library()
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise ImportError(f"redarch_logging_client: cannot load {path}: {e}") from e
    return path, lib


library_path, _lib = _load()


class _Str(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_char_p), ("len", ctypes.c_size_t)]


class _Entry(ctypes.Structure):
    _fields_ = [
        ("message", _Str),
        ("user_id", _Str),
        ("tenant_id", _Str),
        ("request_id", _Str),
        ("context_json", _Str),
        ("client_log_datetime", _Str),
    ]


_STAT_FIELDS = [
    "logged",
    "filtered",
    "delivered",
    "failed_attempts",
    "retried",
    "buffered",
    "replayed",
    "rejected",
    "corrupt",
    "auth_failures",
    "dropped_queue_full",
    "dropped_buffer_cap",
    "dropped_io",
    "queue_len",
    "poisoned",
    "concurrency_limit",
    "rtt_p50_us",
    "sender_panics",
    "dropped_rate_limit",
]


class _Stats(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t)] + [(f, ctypes.c_uint64) for f in _STAT_FIELDS]


_vp = ctypes.c_void_p
_cp = ctypes.c_char_p
_lib.rarch_options_new.restype = _vp
_lib.rarch_options_new.argtypes = []
_lib.rarch_options_set.restype = ctypes.c_int
_lib.rarch_options_set.argtypes = [_vp, _cp, _cp]
_lib.rarch_options_free.restype = None
_lib.rarch_options_free.argtypes = [_vp]
_lib.rarch_logger_open.restype = ctypes.c_int
_lib.rarch_logger_open.argtypes = [_cp, _cp, _vp, ctypes.POINTER(_vp)]
_lib.rarch_logger_free.restype = None
_lib.rarch_logger_free.argtypes = [_vp]
_lib.rarch_log_n.restype = ctypes.c_int
_lib.rarch_log_n.argtypes = [_vp, ctypes.c_int, ctypes.POINTER(_Entry)]
_lib.rarch_log_traced.restype = ctypes.c_int
_lib.rarch_log_traced.argtypes = [_vp, ctypes.c_int, ctypes.POINTER(_Entry), _cp]
_lib.rarch_flush.restype = ctypes.c_int
_lib.rarch_flush.argtypes = [_vp, ctypes.c_uint32]
_lib.rarch_set_level.restype = ctypes.c_int
_lib.rarch_set_level.argtypes = [_vp, ctypes.c_int]
_lib.rarch_get_level.restype = ctypes.c_int
_lib.rarch_get_level.argtypes = [_vp]
_lib.rarch_stats.restype = ctypes.c_int
_lib.rarch_stats.argtypes = [_vp, ctypes.POINTER(_Stats)]
_lib.rarch_last_error.restype = ctypes.c_size_t
_lib.rarch_last_error.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_lib.rarch_status_str.restype = ctypes.c_char_p
_lib.rarch_status_str.argtypes = [ctypes.c_int]
_lib.rarch_version.restype = ctypes.c_char_p
_lib.rarch_version.argtypes = []
# rarch_log is the hot path: no argtypes (ctypes converts bytes/None/int/c_void_p directly,
# which is the cheapest call ctypes has). A CDLL call releases the GIL for its duration.
_log = _lib.rarch_log
# The same function through PyDLL: called with the GIL held, which saves releasing and
# re-taking it. Used only where rarch_log cannot wait (threaded mode, on_full spill or drop,
# not durable: "it never waits on the network or the disk"); everything that can wait
# (rarch_flush, blocking mode, durable, on_full=block) goes through CDLL, without the GIL.
_log_gil = ctypes.PyDLL(library_path).rarch_log
_log_gil.restype = ctypes.c_int
_log.restype = ctypes.c_int

version = _lib.rarch_version().decode()
if not version.startswith("0."):
    raise ImportError(f"redarch_logging_client: {library_path} is version {version}; need 0.x")


def current_traceparent():
    """The W3C traceparent (bytes) of the current OpenTelemetry span, or None when there is no
    valid span or the OpenTelemetry API (opentelemetry-api) is not installed."""
    if _otel_trace is None:
        return None
    sc = _otel_trace.get_current_span().get_span_context()
    if not sc.is_valid:
        return None
    return b"00-%032x-%016x-%02x" % (sc.trace_id, sc.span_id, sc.trace_flags)


def last_error():
    """This thread's last error message from the library."""
    n = _lib.rarch_last_error(None, 0)
    buf = ctypes.create_string_buffer(n + 1)
    _lib.rarch_last_error(buf, n + 1)
    return buf.value.decode("utf-8", "replace")


def status_str(status):
    return _lib.rarch_status_str(status).decode()


# ---------------------------------------------------------------------------------------------
# Converting Python values
# ---------------------------------------------------------------------------------------------


def _json_default(o):
    if isinstance(o, (_dt.datetime, _dt.date, _dt.time)):
        return o.isoformat()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    if isinstance(o, (bytes, bytearray)):
        return bytes(o).decode("utf-8", "replace")
    return str(o)


# A prebuilt C encoder: json.dumps builds one per call, which costs most of its time.
# markers=None (no cycle check: a cycle raises RecursionError and takes the slow path),
# allow_nan=False (NaN is not JSON: it takes the slow path, which sends null).
_fast_encode = c_make_encoder(
    None, _json_default, encode_basestring, None, ":", ",", False, False, False
)


def _sanitize(o, seen):
    if o is None or isinstance(o, (bool, int, str)):
        return o
    if isinstance(o, float):
        return o if o == o and o not in (float("inf"), float("-inf")) else None
    if isinstance(o, dict):
        if id(o) in seen:
            return "<cycle>"
        seen.add(id(o))
        r = {str(k): _sanitize(v, seen) for k, v in o.items()}
        seen.discard(id(o))
        return r
    if isinstance(o, (list, tuple, set, frozenset)):
        if id(o) in seen:
            return "<cycle>"
        seen.add(id(o))
        r = [_sanitize(v, seen) for v in o]
        seen.discard(id(o))
        return r
    try:
        return _sanitize(_json_default(o), seen)
    except Exception:  # a broken __str__
        return "<unrepresentable>"


def context_json(context):
    """The context as UTF-8 JSON bytes of an object; None (or empty) means the default `{}`."""
    if not context:
        return None
    if type(context) is dict:
        try:
            return "".join(_fast_encode(context, 0)).encode()
        except Exception:
            pass
    if not isinstance(context, dict):
        try:
            context = dict(context)  # a Mapping
        except Exception:
            context = {"value": context}  # never lose the entry for a bad context
    return to_bytes(json.dumps(_sanitize(context, set()), ensure_ascii=False,
                               separators=(",", ":")))


_SURROGATES = re.compile("[\ud800-\udfff]")


def to_bytes(s):
    """A field as UTF-8 bytes: None stays None, other types are str()-ed, lone surrogates replaced."""
    if s is None:
        return None
    if not isinstance(s, str):
        s = str(s)
    try:
        return s.encode()
    except UnicodeEncodeError:  # lone surrogates become U+FFFD
        return _SURROGATES.sub("\ufffd", s).encode()


def timestamp(value):
    """client_log_datetime: a str is passed as it is; a datetime is converted (naive = UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.astimezone(_dt.timezone.utc).isoformat().encode()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _dt.datetime.fromtimestamp(value, _dt.timezone.utc).isoformat().encode()
    return to_bytes(value)


def _str_arg(b):
    return _Str(b, len(b)) if b is not None else _Str(None, 0)


# ---------------------------------------------------------------------------------------------
# Loggers
# ---------------------------------------------------------------------------------------------

_live = weakref.WeakSet()  # every open NativeLogger, for exit and fork
_live_lock = threading.Lock()
_exiting = False


def make_options(opts):
    """A rarch_options* from a dict of option keys (see rarch_options_set); caller frees it."""
    o = _lib.rarch_options_new()
    if not o:
        raise MemoryError("rarch_options_new failed")
    try:
        for k, v in opts.items():
            if v is None:
                continue
            if isinstance(v, bool):
                v = "true" if v else "false"
            st = _lib.rarch_options_set(o, to_bytes(k), to_bytes(v))
            if st:
                raise RarchError(st, last_error())
    except BaseException:
        _lib.rarch_options_free(o)
        raise
    return o


class NativeLogger:
    """One rarch_logger*. Thread-safe. `close()` (or garbage collection, or exit) frees it.

    Every use of the handle is bracketed by an append/pop on `_inflight` (atomic under the GIL);
    `close()` first swaps the handle for None, then waits until no call is in flight before
    rarch_logger_free, so a racing thread gets RARCH_ERR_NULL_ARGUMENT, never a freed pointer.
    """

    def __init__(self, service, logger_name=None, options=None):
        if not isinstance(service, str) or not service:
            raise ValueError("service must be a non-empty string")
        self.service = service
        self.logger_name = logger_name or service
        self.options = dict(options or {})
        self.mode = str(self.options.get("mode", "threaded"))
        self._inflight = []
        self._last_report = 0.0
        self._suppressed = 0
        o = make_options(self.options)
        try:
            out = _vp()
            st = _lib.rarch_logger_open(to_bytes(service), to_bytes(logger_name), o,
                                        ctypes.byref(out))
            if st != OK or not out.value:
                raise RarchError(st if st != OK else ERR_PANIC, last_error())
            h = out.value
        finally:
            _lib.rarch_options_free(o)
        self._h = ctypes.c_void_p(h)
        waits = (self.mode != "threaded" or str(self.options.get("on_full", "spill")) == "block"
                 or str(self.options.get("durable", "false")).lower() in ("true", "1", "yes"))
        self._logfn = _log if waits else _log_gil
        self.level = _lib.rarch_get_level(self._h)
        with _live_lock:
            _live.add(self)

    @property
    def closed(self):
        return self._h is None

    def log(self, level, message, user_id=None, tenant_id=None, request_id=None, context=None,
            client_log_datetime=None, traceparent=None):
        """Logs one entry (Python values); returns the rarch_status (0 = OK). `traceparent`
        (a W3C traceparent, str or bytes) defaults to the current OpenTelemetry span's, when
        the OpenTelemetry API is installed and a span is current."""
        if level < self.level:
            return OK
        if traceparent is None and _otel_trace is not None:
            traceparent = current_traceparent()
        try:
            m = message.encode() if type(message) is str else to_bytes(message)
            u = None if user_id is None else (
                user_id.encode() if type(user_id) is str else to_bytes(user_id))
            t = None if tenant_id is None else (
                tenant_id.encode() if type(tenant_id) is str else to_bytes(tenant_id))
            r = None if request_id is None else (
                request_id.encode() if type(request_id) is str else to_bytes(request_id))
        except UnicodeEncodeError:
            m, u, t, r = (to_bytes(x) for x in (message, user_id, tenant_id, request_id))
        if m is None:
            m = b""
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
        if traceparent is not None or b"\0" in m or (u and b"\0" in u) or (t and b"\0" in t) or (
                r and b"\0" in r) or (d and b"\0" in d):
            if isinstance(traceparent, str):
                traceparent = traceparent.encode()
            return self._log_n(level, m, u, t, r, c, d, traceparent)
        inf = self._inflight
        inf.append(None)
        try:
            st = self._logfn(self._h, level, m, u, t, r, c, d)
        finally:
            inf.pop()
        if st:
            self._report(st)
        return st

    def _log_n(self, level, m, u, t, r, c, d, traceparent=None):
        # Strings with NUL bytes: the pointer+length call keeps them whole. A trace context:
        # rarch_log_traced.
        e = _Entry(_str_arg(m), _str_arg(u), _str_arg(t), _str_arg(r), _str_arg(c), _str_arg(d))
        inf = self._inflight
        inf.append(None)
        try:
            if traceparent is not None:
                st = _lib.rarch_log_traced(self._h, level, ctypes.byref(e), traceparent)
            else:
                st = _lib.rarch_log_n(self._h, level, ctypes.byref(e))
        finally:
            inf.pop()
        if st:
            self._report(st)
        return st

    def _report(self, st):
        """Reports a failed log on stderr, as the Python client did (at most once a second)."""
        if self._h is None:
            msg = "the logger is closed"
        else:
            msg = last_error()
        now = time.monotonic()
        if now - self._last_report < 1.0:
            self._suppressed += 1
            return
        more = f" ({self._suppressed} more suppressed)" if self._suppressed else ""
        self._last_report = now
        self._suppressed = 0
        try:
            sys.stderr.write(f"[LOGGING ERROR] {self.service}: {STATUS_NAMES.get(st, st)}: "
                             f"{msg}{more}\n")
        except Exception:
            pass

    def flush(self, timeout_ms=10000):
        """rarch_flush: waits (without the GIL) until everything logged so far is delivered.
        Returns the status: OK, ERR_TIMED_OUT (nothing dropped), ERR_NULL_ARGUMENT if closed."""
        timeout_ms = max(0, min(int(timeout_ms), 0xFFFFFFFF))
        inf = self._inflight
        inf.append(None)
        try:
            return _lib.rarch_flush(self._h, timeout_ms)
        finally:
            inf.pop()

    def set_level(self, level):
        inf = self._inflight
        inf.append(None)
        try:
            st = _lib.rarch_set_level(self._h, level)
        finally:
            inf.pop()
        if st:
            raise RarchError(st, last_error())
        self.level = level

    def stats(self):
        s = _Stats()
        s.size = ctypes.sizeof(_Stats)
        inf = self._inflight
        inf.append(None)
        try:
            st = _lib.rarch_stats(self._h, ctypes.byref(s))
        finally:
            inf.pop()
        if st:
            raise RarchError(st, last_error())
        return {f: getattr(s, f) for f in _STAT_FIELDS}

    def close(self, wait_s=30.0):
        """Frees the logger: the last one of a pipeline delivers for up to close_timeout_ms, then
        writes what is left to the disk buffer. Idempotent. Returns False if a call was still in
        flight after `wait_s` (the handle is then leaked rather than freed under that call)."""
        h, self._h = self._h, None
        if h is None:
            return True
        deadline = time.monotonic() + wait_s
        while self._inflight:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        _lib.rarch_logger_free(h)
        return True

    def __del__(self):
        # No call can be in flight: every caller holds a reference while it calls.
        h = getattr(self, "_h", None)
        if h is not None:
            self._h = None
            try:
                _lib.rarch_logger_free(h)
            except Exception:
                pass


def _close_all():
    """At exit: free every logger, so each pipeline delivers what it can and spills the rest."""
    global _exiting
    _exiting = True
    with _live_lock:
        loggers = list(_live)
    for nl in loggers:
        try:
            nl.close(wait_s=5.0)
        except Exception:
            pass


atexit.register(_close_all)


def _after_fork_child():
    # Calls in flight in other threads of the parent do not exist in the child.
    global _live_lock
    _live_lock = threading.Lock()
    for nl in list(_live):
        nl._inflight.clear()


os.register_at_fork(after_in_child=_after_fork_child)
