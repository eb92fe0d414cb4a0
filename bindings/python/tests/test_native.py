"""Beyond the Python client: logging.Handler, the GIL during flush, fork-safety, exit."""

import logging
import os
import sys
import threading
import time

import pytest

import redarch_logging_client as rlc
from redarch_logging_client import Logger, RarchHandler

from conftest import run_python, subprocess_env, wait_for


@pytest.fixture
def pylogger(env, service):
    h = RarchHandler(service)
    lg = logging.getLogger("app." + service)
    lg.setLevel(logging.DEBUG)
    lg.propagate = False
    lg.addHandler(h)
    yield lg, h
    lg.removeHandler(h)
    h.close()


def test_handler_maps_levels_extra_and_context(env, service, pylogger):
    lg, h = pylogger
    lg.debug("d %s", "arg")
    lg.info("i", extra={"user_id": "u1", "tenant_id": "t1", "request_id": "r1",
                        "context": {"order": 42}, "sku": "abc"})
    lg.warning("w")
    lg.error("e", extra={"client_log_datetime": "2026-11-23T22:30:00Z"})
    lg.critical("c")
    try:
        1 / 0
    except ZeroDivisionError:
        lg.exception("boom")
    assert h.flush()
    es = {e["message"].splitlines()[0]: e for e in env.wait_entries(service, 6)}
    assert {m: e["level"] for m, e in es.items()} == {
        "d arg": "DEBUG", "i": "INFO", "w": "WARN", "e": "ERROR", "c": "FATAL", "boom": "ERROR"}
    i = es["i"]
    assert (i["user_id"], i["tenant_id"], i["request_id"]) == ("u1", "t1", "r1")
    assert i["context"] == {"order": 42, "sku": "abc"}
    assert i["logger_name"] == "app." + service
    assert es["w"]["context"] == {} and es["w"]["user_id"] is None
    assert es["e"]["client_log_datetime"].startswith("2026-11-23T22:30:00")
    assert "ZeroDivisionError" in es["boom"]["message"]


def test_handler_with_a_library_using_logging(env, service):
    """A library that only knows `logging` ships through the handler (here: the root logger)."""
    root = logging.getLogger()
    h = RarchHandler(service, logger_name="root-handler", level=logging.WARNING)
    root.addHandler(h)
    try:
        logging.getLogger("some.library").warning("from a library")
        logging.getLogger("some.library").info("below the handler's level")
    finally:
        root.removeHandler(h)
    assert h.flush()
    es = env.wait_entries(service, 1)
    assert [(e["message"], e["logger_name"]) for e in es] == [("from a library", "root-handler")]
    h.close()


def test_flush_releases_the_gil(env, service):
    """While rarch_flush waits on a slow server, another Python thread makes progress."""
    env.fault(mode="delay", delay_ms=400, rate=1.0)
    lg = Logger(service)
    lg.info("slow")
    counter = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            counter[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        wait_for(lambda: counter[0] > 0, 5, "the spinning thread")
        before = counter[0]
        t0 = time.monotonic()
        assert lg.flush(10)
        waited = time.monotonic() - t0
        progress = counter[0] - before
    finally:
        stop.set()
        t.join()
    assert waited >= 0.2, waited
    # Had flush held the GIL, the other thread could not have counted at all meanwhile.
    assert progress > 10000, progress
    assert len(env.entries(service)) == 1


def test_fork_child_logs_its_own_entries(env, service):
    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    lg = Logger(service)
    lg.info("parent before fork")
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            child = Logger(service, logger_name="child")
            lg.info("from the child's inherited logger")
            child.info("from the child")
            code = 0 if lg.flush(10) and child.flush(10) else 2
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    lg.info("parent after fork")
    assert lg.flush(10)
    es = env.wait_entries(service, 4)
    assert sorted(e["message"] for e in es) == [
        "from the child", "from the child's inherited logger", "parent after fork",
        "parent before fork"]
    assert env.stats()["duplicates"] == 0


def test_multiprocessing_fork_workers(env, service, tmp_path):
    code = f"""
import multiprocessing as mp
from redarch_logging_client import get_logger

def work(i):
    lg = get_logger({service!r}, "worker")
    lg.info("worker %d" % i)
    return lg.flush(10)

if __name__ == "__main__":
    get_logger({service!r}, "worker").info("parent")
    with mp.get_context("fork").Pool(2) as p:
        assert all(p.map(work, range(4)))
"""
    f = tmp_path / "mp.py"
    f.write_text(code)
    p = run_python(str(f), str(tmp_path), subprocess_env(env))
    assert p.returncode == 0, p.stderr
    es = env.wait_entries(service, 5)
    assert sorted(e["message"] for e in es) == ["parent"] + [f"worker {i}" for i in range(4)]


def test_exit_with_a_daemon_thread_logging(env, service, tmp_path):
    """At exit the loggers are freed while a daemon thread still logs: no crash, and what was
    logged before the exit arrives."""
    code = f"""
import threading
from redarch_logging_client import get_logger
lg = get_logger({service!r})
def spam():
    while True:
        lg.debug("daemon")
threading.Thread(target=spam, daemon=True).start()
for i in range(100):
    lg.info("main %d" % i)
"""
    p = run_python(code, str(tmp_path), subprocess_env(env))
    assert p.returncode == 0, p.stderr
    msgs = [e["message"] for e in env.entries(service)]
    assert sorted(m for m in msgs if m.startswith("main")) == sorted(f"main {i}" for i in range(100))


def test_calls_that_can_wait_release_the_gil(env, service):
    from redarch_logging_client import _native
    assert Logger(service, mode="blocking")._native._logfn is _native._log  # CDLL
    assert Logger(service, options={"durable": True})._native._logfn is _native._log
    assert Logger(service, options={"on_full": "block"})._native._logfn is _native._log
    # Threaded mode's rarch_log never waits: it is called without releasing the GIL.
    assert Logger(service)._native._logfn is _native._log_gil
