"""Delivery events (Logger.on_event, RarchHandler.on_event) against the receiver: what the
callbacks were told for what the receiver did."""

import datetime as dt
import logging
import threading

import pytest

from redarch_logging_client import Event, EventKind, Logger, RarchHandler

from conftest import wait_for


class Sink:
    """Collects events from the poller thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.events = []
        self.threads = set()

    def __call__(self, ev):
        with self.lock:
            self.events.append(ev)
            self.threads.add(threading.current_thread())

    def of(self, kind):
        with self.lock:
            return [e for e in self.events if e.kind == kind]

    def kinds(self):
        with self.lock:
            return [e.kind for e in self.events]


def make(receiver, tmp_path, service, **opts):
    o = {"url": receiver.url, "api_key": receiver.key, "buffer_dir": str(tmp_path / "buf"),
         "backoff_initial_ms": 10, "backoff_max_ms": 200}
    o.update(opts)
    return Logger(service, options=o)


def test_all_reports_each_delivery_with_its_request_id(receiver, tmp_path, service):
    lg = make(receiver, tmp_path, service, events="all")
    sink = Sink()
    assert lg.on_event(sink) is sink
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    for i in range(500):
        lg.info("e", request_id=f"all-{i}")
    assert lg.flush(10)
    wait_for(lambda: len(sink.of(EventKind.DELIVERED)) >= 500, 10, "500 delivered events")
    evs = sink.of(EventKind.DELIVERED)
    assert {e.request_id for e in evs} == {f"all-{i}" for i in range(500)}
    assert len(evs) == 500 and sink.kinds() == [EventKind.DELIVERED] * 500
    for e in evs:
        assert isinstance(e, Event) and e.count == 1 and (e.status == 0 or 200 <= e.status < 300)
        assert before <= e.time <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
    # Called on the package's own daemon thread, never this one.
    assert len(sink.threads) == 1
    (t,) = sink.threads
    assert t is not threading.current_thread() and t.daemon and t.name.startswith("rarch-events")
    lg.close()
    t.join(10)
    assert not t.is_alive(), "close() did not stop the event thread"


def test_problems_reports_a_dead_letter_and_no_delivery(receiver, tmp_path, service):
    lg = make(receiver, tmp_path, service, events="problems")
    sink = Sink()
    dead = Sink()
    lg.on_event(sink)
    lg.on_event(dead, kinds="DEAD_LETTERED")
    receiver.fault(mode="status", status=400, count=1)
    lg.info("refused", request_id="dead-1")
    assert lg.flush(10)
    for i in range(20):
        lg.info("fine", request_id=f"ok-{i}")
    assert lg.flush(10)
    receiver.wait_entries(service, 20)
    wait_for(lambda: dead.events, 10, "the dead-lettered event")
    lg.close()  # a last poll: anything else would be in the sink now
    (ev,) = dead.events
    assert ev.kind == EventKind.DEAD_LETTERED and ev.status == 400
    assert ev.request_id == "dead-1" and ev.count == 1 and ev.message
    assert sink.kinds() == [EventKind.DEAD_LETTERED], sink.events


def test_an_outage_starts_and_ends_and_every_entry_is_delivered(receiver, tmp_path, service):
    lg = make(receiver, tmp_path, service, events="problems")
    sink = Sink()
    lg.on_event(sink, kinds=[EventKind.OUTAGE_STARTED, EventKind.OUTAGE_ENDED])
    receiver.fault(mode="status", status=503, rate=1.0)
    for i in range(100):
        lg.info("during", request_id=f"o-{i}")
    # No flush: the thread's periodic poll reports it.
    wait_for(lambda: sink.of(EventKind.OUTAGE_STARTED), 20, "OUTAGE_STARTED")
    receiver.heal()
    assert lg.flush(20)
    wait_for(lambda: sink.of(EventKind.OUTAGE_ENDED), 20, "OUTAGE_ENDED")
    kinds = sink.kinds()
    assert kinds.index(EventKind.OUTAGE_STARTED) < kinds.index(EventKind.OUTAGE_ENDED)
    started = sink.of(EventKind.OUTAGE_STARTED)[0]
    assert started.status == 503 and started.message
    assert len({e["request_id"] for e in receiver.entries(service)}) == 100
    lg.close()


def test_rate_limited_events_add_up_to_the_stats(receiver, tmp_path, service):
    lg = make(receiver, tmp_path, service, events="problems", rate_limit=100)
    sink = Sink()
    lg.on_event(sink, kinds=EventKind.RATE_LIMITED)
    for _ in range(2000):
        lg.debug("storm")
    assert lg.flush(10)
    dropped = lg.stats()["dropped_rate_limit"]
    assert dropped > 0
    total = lambda: sum(e.count for e in sink.events)  # noqa: E731
    wait_for(lambda: total() >= dropped, 10, "RATE_LIMITED events adding up")
    assert total() == dropped
    lg.close()


def test_a_failing_callback_is_reported_and_the_others_go_on(receiver, tmp_path, service, capfd):
    lg = make(receiver, tmp_path, service, events="all")

    def bad(ev):
        raise RuntimeError("callback bug")

    sink = Sink()
    lg.on_event(bad)
    lg.on_event(sink)
    for i in range(3):
        lg.info("x", request_id=f"f-{i}")
    assert lg.flush(10)
    wait_for(lambda: len(sink.events) >= 3, 10, "3 events despite the failing callback")
    assert lg.remove_event_callback(bad) and not lg.remove_event_callback(bad)
    lg.close()
    err = capfd.readouterr().err
    assert "on_event callback raised" in err and "callback bug" in err


def test_without_callbacks_events_wait_and_the_thread_ends(receiver, tmp_path, service):
    lg = make(receiver, tmp_path, service, events="all")
    sink = Sink()
    lg.on_event(sink)
    lg.info("one", request_id="w-1")
    assert lg.flush(10)
    wait_for(lambda: sink.events, 10, "the first event")
    (t,) = sink.threads
    assert lg.remove_event_callback(sink)
    t.join(10)
    assert not t.is_alive(), "the thread outlived its last callback"
    for i in range(5):
        lg.info("later", request_id=f"w-{i + 2}")
    assert lg.flush(10)
    late = Sink()
    lg.on_event(late)
    wait_for(lambda: len(late.events) >= 5, 10, "the events kept for a later callback")
    assert sorted(e.request_id for e in late.events) == [f"w-{i}" for i in range(2, 7)]
    lg.close()


def test_close_then_reopen_resumes_polling(receiver, tmp_path, service):
    lg = make(receiver, tmp_path, service, events="all")
    sink = Sink()
    lg.on_event(sink)
    lg.info("a", request_id="r-1")
    lg.close()  # delivers; the last poll happens before the free
    lg.info("b", request_id="r-2")  # opens a new native logger
    assert lg.flush(10)
    wait_for(lambda: "r-2" in {e.request_id for e in sink.events}, 10, "r-2 after the reopen")
    lg.close()


def test_the_handler_reports_events_too(receiver, tmp_path, service):
    h = RarchHandler(service, options={"url": receiver.url, "api_key": receiver.key,
                                       "buffer_dir": str(tmp_path / "buf"), "events": "problems"})
    sink = Sink()
    h.on_event(sink)
    log = logging.getLogger(f"events.{service}")
    log.propagate = False
    log.addHandler(h)
    try:
        receiver.fault(mode="status", status=422, count=1)
        log.error("refused", extra={"request_id": "h-1"})
        assert h.flush(10)
        wait_for(lambda: sink.of(EventKind.DEAD_LETTERED), 10, "the handler's dead letter")
        ev = sink.of(EventKind.DEAD_LETTERED)[0]
        assert ev.status == 422 and ev.request_id == "h-1"
    finally:
        log.removeHandler(h)
        h.close()
    (t,) = sink.threads
    t.join(10)
    assert not t.is_alive()


def test_a_bad_callback_or_kind_is_refused(receiver, tmp_path, service):
    lg = make(receiver, tmp_path, service)
    with pytest.raises(TypeError):
        lg.on_event("not callable")
    with pytest.raises(ValueError, match="NO_SUCH_KIND"):
        lg.on_event(lambda ev: None, kinds="NO_SUCH_KIND")
    lg.close()
