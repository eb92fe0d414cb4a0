"""What arrives at the receiver: fields, defaults, odd inputs, modes, buffering and replay."""

import datetime as dt
import json
import os
import stat
import uuid

import pytest

import redarch_logging_client as rlc
from redarch_logging_client import Logger
from redarch_logging_client.threading import ThreadedLogger

from conftest import run_python, subprocess_env, wait_for


def test_fields_and_defaults(env, service):
    lg = rlc.get_logger(service, "orders")
    lg.info("full", user_id="u1", tenant_id="t1", request_id="r1",
            context={"order": 42, "nested": {"a": [1, 2.5, None, True]}, "name": "Zoë"},
            client_log_datetime="2026-11-23T22:30:00.123456Z")
    lg.debug("bare")
    assert lg.flush(10)
    full, bare = sorted(env.wait_entries(service, 2), key=lambda e: e["message"] != "full")
    assert full == {
        "level": "INFO", "service": service, "logger_name": "orders", "message": "full",
        "user_id": "u1", "tenant_id": "t1", "request_id": "r1",
        "context": {"order": 42, "nested": {"a": [1, 2.5, None, True]}, "name": "Zoë"},
        "client_log_datetime": full["client_log_datetime"],
    }
    assert full["client_log_datetime"].startswith("2026-11-23T22:30:00.123456")
    assert bare["user_id"] is None and bare["tenant_id"] is None and bare["context"] == {}
    assert str(uuid.UUID(bare["request_id"])) == bare["request_id"]
    when = dt.datetime.fromisoformat(bare["client_log_datetime"].replace("Z", "+00:00"))
    assert abs((dt.datetime.now(dt.timezone.utc) - when).total_seconds()) < 60
    assert bare["logger_name"] == "orders"
    assert env.stats()["bad_entries"] == 0


def test_odd_inputs_still_arrive(env, service):
    lg = Logger(service)
    lg.info("nul\0inside", user_id=123, context={"when": dt.date(2026, 1, 2), "nan": float("nan"),
                                                 1: "int key", "set": {3}})
    lg.info("surrogate \udcff", context=["not", "an", "object"])
    lg.info("aware", client_log_datetime=dt.datetime(2026, 1, 2, 3, 4, 5,
                                                     tzinfo=dt.timezone(dt.timedelta(hours=2))))
    cyc = {}
    cyc["self"] = cyc
    lg.info("cycle", context=cyc)
    assert lg.flush(10)
    by = {e["message"].split()[0]: e for e in env.wait_entries(service, 4)}
    a, b, c, d = by["nul\0inside"], by["surrogate"], by["aware"], by["cycle"]
    assert a["message"] == "nul\0inside" and a["user_id"] == "123"
    assert a["context"] == {"when": "2026-01-02", "nan": None, "1": "int key", "set": [3]}
    assert b["message"] == "surrogate \ufffd" and b["context"] == {"value": ["not", "an", "object"]}
    assert c["client_log_datetime"].startswith("2026-01-02T01:04:05")
    assert d["context"] == {"self": "<cycle>"}


def test_invalid_timestamp_is_reported_not_raised(env, service, capfd):
    lg = Logger(service)
    lg.info("bad time", client_log_datetime="yesterday")
    lg.info("good")
    assert lg.flush(10)
    assert [e["message"] for e in env.wait_entries(service, 1)] == ["good"]
    assert "[LOGGING ERROR]" in capfd.readouterr().err


def test_blocking_mode_delivers_before_returning(env, service):
    lg = Logger(service, mode="blocking")
    lg.warn("sync")
    assert [e["message"] for e in env.entries(service)] == ["sync"]


def test_threaded_logger_keeps_logging_after_flush_and_stop(env, service):
    tl = ThreadedLogger(service=service, logger_name="worker", level="INFO")
    tl.debug("filtered")
    tl.info("one")
    assert tl.flush()
    tl.info("after flush")          # the Python client lost this (its flush stopped the worker)
    assert tl.stop()
    tl.error("after stop")          # a new native logger is opened
    assert tl.flush()
    assert tl.level == "INFO"
    msgs = sorted(e["message"] for e in env.wait_entries(service, 3))
    assert msgs == ["after flush", "after stop", "one"]
    tl.stop()


def test_buffer_when_down_then_replay(env, service, tmp_path):
    """A process whose server is down leaves ./var/log/<service>/buffer.jsonl (mode 0600);
    the next start replays it."""
    work = str(tmp_path / "work")
    dead = subprocess_env(env, RARCH_LOGGING_URL="http://127.0.0.1:9/log")
    code = f"""
from redarch_logging_client.threading import ThreadedLogger
tl = ThreadedLogger({service!r}, options={{"close_timeout_ms": 200, "max_retries": 0,
                                         "timeout_ms": 200}})
for i in range(5):
    tl.info("offline %d" % i)
print(tl.stop(timeout=0.3))
"""
    p = run_python(code, work, dead)
    assert p.returncode == 0, p.stderr
    d = os.path.join(work, "var", "log", service)
    buf = os.path.join(d, "buffer.jsonl")
    wait_for(lambda: os.path.exists(buf), 5, "the buffer file")
    # The entries are in buffer.jsonl, or in a file an outage probe claimed
    # (buffer.sending-*.jsonl), which the next start replays.
    lines = []
    for name in sorted(os.listdir(d)):
        if name.startswith(("buffer.jsonl", "buffer.sending-", "buffer.rotated-")):
            path = os.path.join(d, name)
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
            lines += [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]
    assert sorted(l["message"] for l in lines) == [f"offline {i}" for i in range(5)]
    assert env.entries(service) == []
    # Next start, server up: the buffer is replayed.
    code2 = f"""
from redarch_logging_client.threading import ThreadedLogger
tl = ThreadedLogger({service!r})
assert tl.flush(20)
"""
    p = run_python(code2, work, subprocess_env(env))
    assert p.returncode == 0, p.stderr
    es = env.wait_entries(service, 5)
    assert sorted(e["message"] for e in es) == [f"offline {i}" for i in range(5)]


def test_python_client_buffer_is_replayed(env, tmp_path):
    """A buffer file written by the Python client is read by this one."""
    vec = "/work/shared/vectors/python-client-buffer.jsonl"
    if not os.path.isfile(vec):
        pytest.skip("no Python client buffer vector on this machine")
    lines = [json.loads(l) for l in open(vec, encoding="utf-8") if l.strip()]
    svc = lines[0]["service"]
    d = tmp_path / "work" / "var" / "log" / svc
    d.mkdir(parents=True)
    with open(d / "buffer.jsonl", "w", encoding="utf-8") as f:
        f.write(open(vec, encoding="utf-8").read())
    tl = ThreadedLogger(svc)
    assert tl.flush(20)
    tl.stop()
    assert len(env.wait_entries(svc, len(lines))) == len(lines)


def test_wrong_key_keeps_entries(env, service):
    env.set_key("another-key")
    lg = Logger(service, options={"max_retries": 0})
    lg.info("kept")
    wait_for(lambda: lg.stats()["auth_failures"] >= 1, 15, "an auth failure")
    env.set_key(os.environ["RARCH_LOGGING_API_KEY"])
    assert lg.flush(20)
    assert [e["message"] for e in env.wait_entries(service, 1)] == ["kept"]
