"""The binding's tables against rarch_logging.h: the status constants and names (_native.py) and
the fields of rarch_statistics (_native._STAT_FIELDS, stats()). The header is looked for in
$RARCH_LOGGING_INCLUDE, beside the loaded library (<prefix>/lib -> <prefix>/include) and in the
repository; without it these tests are skipped, saying so."""

import os
import re

import pytest

from redarch_logging_client import _native

HERE = os.path.dirname(os.path.abspath(__file__))


def _header():
    dirs = [os.environ.get("RARCH_LOGGING_INCLUDE"),
            os.path.join(os.path.dirname(_native.library_path), "..", "include"),
            os.path.join(os.environ.get("RARCH_PYTHON_SOURCE", ""), "..", "..", "include"),
            os.path.join(HERE, "..", "..", "..", "include")]
    tried = [os.path.join(d, "rarch_logging.h") for d in dirs if d]
    for p in tried:
        if os.path.isfile(p):
            with open(p, encoding="utf-8") as f:
                return f.read()
    pytest.skip("rarch_logging.h not found (set RARCH_LOGGING_INCLUDE); tried " + ", ".join(tried))


def _between(text, start, end):
    i = text.index(start)
    return text[i:text.index(end, i)]


def test_statuses_are_the_headers():
    h = _between(_header(), "typedef enum rarch_status {", "} rarch_status;")
    statuses = [(m[1], int(m[2])) for m in re.finditer(r"^\s*(RARCH_\w+) = (\d+),?$", h, re.M)]
    assert len(statuses) >= 16
    assert sorted(_native.STATUS_NAMES.items()) == [(v, n) for n, v in statuses]
    # The module's constants: OK, ERR_NULL_ARGUMENT, ... one per status, with its value.
    consts = {n: v for n, v in vars(_native).items()
              if re.fullmatch(r"OK|ERR_[A-Z0-9_]+", n) and isinstance(v, int)}
    assert consts == {n[len("RARCH_"):]: v for n, v in statuses}


def test_stats_are_the_headers(tmp_path):
    h = _between(_header(), "typedef struct rarch_statistics {", "} rarch_statistics;")
    fields = re.findall(r"^\s+\w+ (\w+);$", h, re.M)
    assert fields[0] == "size"
    assert _native._STAT_FIELDS == fields[1:]
    nl = _native.NativeLogger("tables", options={"url": "http://127.0.0.1:9/log",
                                                 "buffer_dir": str(tmp_path),
                                                 "close_timeout_ms": 0})
    try:
        assert list(nl.stats()) == fields[1:]
    finally:
        nl.close()


def test_event_kinds():
    from redarch_logging_client import EventKind
    from redarch_logging_client.events import _Event

    h = _header()
    kinds = {m[0]: int(m[1]) for m in re.findall(r"^\s*RARCH_EVENT_(\w+) = (\d+),?$", h, re.M)}
    assert len(kinds) == 8
    assert {k.name: k.value for k in EventKind} == kinds
    fields = re.findall(r"^\s+(?:int|uint64_t|char) (\w+)(?:\[\d+\])?;$",
                        _between(h, "typedef struct rarch_event {", "} rarch_event;"), re.M)
    assert [f[0] for f in _Event._fields_] == fields
