"""Delivery events (rarch_poll_events): what happened to the entries, for callbacks.

The library never calls back: `EventPoller` runs a daemon thread of this package that polls it
(every 50 ms, and at once after a flush) while callbacks are registered and the logger is open,
and calls them on that thread. `Logger.on_event` and `RarchHandler.on_event` use it.
"""

import ctypes
import dataclasses
import datetime as _dt
import enum
import functools
import os
import sys
import threading
import traceback
import weakref

from ._native import _lib, _vp

__all__ = ["Event", "EventKind", "EventPoller", "EventSource"]


class EventKind(enum.IntEnum):
    """The kinds of event (rarch_event_kind). The option `events` chooses which are made:
    "problems" every kind but DELIVERED, "all" every kind, "off" (the default) none."""

    #: An entry was delivered (2xx), fresh or from the disk buffer; `request_id` is the entry's.
    DELIVERED = 1
    #: An entry went to buffer.rejected.jsonl: refused with a 4xx (`status`) or poison (failed
    #: max_attempts times while others were delivered); `request_id` is the entry's.
    DEAD_LETTERED = 2
    #: `count` entries were dropped (queue full, buffer cap, disk), as counted in stats().
    DROPPED = 3
    #: The server is considered down (`status` of the failure that did it, `message` the last
    #: error); entries go to the disk buffer.
    OUTAGE_STARTED = 4
    #: The server answers again.
    OUTAGE_ENDED = 5
    #: A buffer file could not be written (`count` entries affected).
    IO_ERROR = 6
    #: The logger's rate_limit dropped `count` entries (one event per summary entry).
    RATE_LIMITED = 7
    #: `count` events were not kept: events_capacity were waiting to be polled.
    EVENTS_LOST = 8


@dataclasses.dataclass(frozen=True)
class Event:
    """One event (rarch_event)."""

    kind: EventKind
    status: int  #: the HTTP status, 0 when there is none
    count: int  #: the entries it is about (1 for a per-entry kind)
    time: _dt.datetime  #: when it happened (UTC, millisecond precision)
    request_id: str  #: the entry's request_id for a per-entry kind, "" otherwise
    message: str  #: the reason, for a person (at most 255 bytes; never the API key)


class _Event(ctypes.Structure):
    _fields_ = [
        ("kind", ctypes.c_int),
        ("status", ctypes.c_int),
        ("count", ctypes.c_uint64),
        ("time_unix_ms", ctypes.c_uint64),
        ("request_id", ctypes.c_char * 64),
        ("message", ctypes.c_char * 256),
    ]


_lib.rarch_poll_events.restype = ctypes.c_size_t
_lib.rarch_poll_events.argtypes = [_vp, ctypes.POINTER(_Event), ctypes.c_size_t, ctypes.c_size_t]

POLL_EVERY_S = 0.05  # how often the thread polls
_BATCH = 256  # the most events one rarch_poll_events call takes
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def _kind(k):
    """An EventKind from itself, its value or its name (any case)."""
    if isinstance(k, EventKind):
        return k
    try:
        return EventKind(k) if isinstance(k, int) else EventKind[str(k).upper()]
    except (KeyError, ValueError):
        raise ValueError(f"on_event: unknown event kind {k!r} (one of "
                         f"{', '.join(k.name for k in EventKind)})") from None


def _decode(e):
    try:
        kind = EventKind(e.kind)
    except ValueError:  # a kind newer than this package
        kind = e.kind
    return Event(kind, e.status, e.count, _EPOCH + _dt.timedelta(milliseconds=e.time_unix_ms),
                 e.request_id.decode("utf-8", "replace"), e.message.decode("utf-8", "replace"))


def poll_events(nl, max_events=_BATCH, _buf=None):
    """Takes up to `max_events` events of a NativeLogger's pipeline (never blocks); [] once it
    is closed."""
    buf = _buf if _buf is not None else (_Event * max_events)()
    inf = nl._inflight
    inf.append(None)
    try:
        h = nl._h
        if h is None:
            return []
        n = _lib.rarch_poll_events(h, buf, max_events, ctypes.sizeof(_Event))
    finally:
        inf.pop()
    return [_decode(buf[i]) for i in range(n)]


_pollers = weakref.WeakSet()


class EventPoller:
    """Calls the registered callbacks with the events of the NativeLogger that `native_of()`
    returns, from a daemon thread that runs while there are callbacks and `close()` has not
    been called. `native_of()` returning None (its owner is gone) ends the thread."""

    def __init__(self, native_of, name):
        self._native_of = native_of
        self._name = name
        self._callbacks = []  # (callback, kinds or None)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None
        self._stopping = False
        _pollers.add(self)

    def add(self, callback, kinds=None):
        if not callable(callback):
            raise TypeError("on_event: callback must be callable")
        if kinds is not None:
            kinds = frozenset(_kind(k) for k in (
                [kinds] if isinstance(kinds, (str, EventKind)) else kinds))
        with self._lock:
            self._callbacks.append((callback, kinds))
            self._start_locked()

    def remove(self, callback):
        """Removes every registration of `callback`; True if there was one."""
        with self._lock:
            before = len(self._callbacks)
            self._callbacks = [(c, k) for c, k in self._callbacks if c != callback]
            return len(self._callbacks) != before

    def _start_locked(self):
        if self._thread is None and not self._stopping and self._callbacks:
            self._thread = threading.Thread(target=self._run, name=f"rarch-events-{self._name}",
                                             daemon=True)
            self._thread.start()

    def poke(self):
        """A poll now (after a flush)."""
        self._wake.set()

    def close(self, timeout=5.0):
        """The logger is closing (its handle still valid): the thread polls a last time, calls
        the callbacks, and ends; waits for it up to `timeout` seconds (not when called from a
        callback)."""
        with self._lock:
            self._stopping = True
            t = self._thread
        self._wake.set()
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    def reopen(self):
        """The logger was opened again: polling resumes if there are callbacks."""
        with self._lock:
            self._stopping = False
            self._start_locked()

    def _run(self):
        buf = (_Event * _BATCH)()
        while True:
            self._wake.wait(POLL_EVERY_S)
            self._wake.clear()
            with self._lock:
                callbacks = list(self._callbacks)
                stopping = self._stopping
                if not callbacks:
                    self._thread = None
                    return
            nl = self._native_of()
            if nl is None:
                with self._lock:
                    self._thread = None
                return
            while True:
                evs = poll_events(nl, _BATCH, buf)
                self._dispatch(evs, callbacks)
                if len(evs) < _BATCH:
                    break
            if stopping:
                with self._lock:
                    if self._stopping or not self._callbacks:
                        self._thread = None
                        return
                # Reopened meanwhile: keep polling.

    def _dispatch(self, evs, callbacks):
        for ev in evs:
            for cb, kinds in callbacks:
                if kinds is not None and ev.kind not in kinds:
                    continue
                try:
                    cb(ev)
                except Exception:
                    # The thread keeps serving the other callbacks and events.
                    try:
                        sys.stderr.write(f"[LOGGING ERROR] {self._name}: an on_event callback "
                                         f"raised:\n{traceback.format_exc()}")
                    except Exception:
                        pass


def _native_of(ref):
    owner = ref()
    return None if owner is None else owner._events_native()


class EventSource:
    """`on_event` and `remove_event_callback` for a class with a `service` attribute and an
    `_events_native()` method giving the NativeLogger to poll (Logger, RarchHandler). The
    class calls `self._events.poke()` after a flush and `self._events.close()` before it frees
    its native loggers, when `self._events` is not None."""

    _events = None  # the EventPoller, made by the first on_event

    def _events_native(self):
        raise NotImplementedError

    def on_event(self, callback, kinds=None):
        """Registers `callback(event)` for the delivery events of this logger's pipeline (an
        `Event`; which are made depends on the option `events`: "problems" or "all"; "off",
        the default, makes none). `kinds`: an `EventKind`, a name ("DEAD_LETTERED") or an
        iterable of them, to receive only those; None for all. Returns `callback` (usable as a
        decorator).

        The callbacks run on a daemon thread of this package that polls the library every
        50 ms, and at once after `flush()`, while callbacks are registered and the logger is
        open. An exception in a callback is printed to stderr; the thread goes on."""
        if self._events is None:
            self._events = EventPoller(functools.partial(_native_of, weakref.ref(self)),
                                       self.service)
        self._events.add(callback, kinds)
        return callback

    def remove_event_callback(self, callback):
        """Unregisters `callback` (every registration of it); True if it was registered. With
        no callback left the thread ends, and events wait in the library (at most
        events_capacity) for a callback registered later."""
        return self._events is not None and self._events.remove(callback)


def _after_fork_child():
    # The parent's polling threads do not exist in the child: start them again.
    for p in list(_pollers):
        p._lock = threading.Lock()
        p._wake = threading.Event()
        p._thread = None
        with p._lock:
            p._start_locked()


os.register_at_fork(after_in_child=_after_fork_child)
