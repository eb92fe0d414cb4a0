"""Trace correlation: with the OpenTelemetry API installed, the drop-in logger and the
logging.Handler give each entry the current span's trace id, span id and flags."""

import logging

import pytest

import redarch_logging_client as rlc
from redarch_logging_client import RarchHandler

trace = pytest.importorskip("opentelemetry.trace")

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN_ID = 0x00F067AA0BA902B7


def _span():
    ctx = trace.SpanContext(TRACE_ID, SPAN_ID, is_remote=False,
                            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))
    return trace.use_span(trace.NonRecordingSpan(ctx))


def _check(entries):
    by = {e["message"]: e for e in entries}
    for m in ("logger in span", "handler in span"):
        e = by[m]
        assert (e["trace_id"], e["span_id"], e["trace_flags"]) == (
            "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 1), e
    for m in ("logger outside", "handler outside"):
        assert "trace_id" not in by[m], by[m]


def test_the_current_span_is_on_the_entry(env, service):
    lg = rlc.get_logger(service, "traced")
    h = RarchHandler(service, logger_name="traced-handler")
    py = logging.getLogger(f"{service}.trace")
    py.addHandler(h)
    py.setLevel(logging.INFO)
    py.propagate = False
    try:
        with _span():
            lg.info("logger in span", user_id="u1")
            py.info("handler in span")
        lg.info("logger outside")
        py.info("handler outside")
        assert lg.flush(10)
        h.flush()
    finally:
        py.removeHandler(h)
        h.close()
    _check(env.wait_entries(service, 4))
