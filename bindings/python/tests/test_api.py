"""The public API has the Python client's names, signatures and defaults."""

import inspect
import os
import subprocess
import sys

import pytest

import redarch_logging_client as rlc
from redarch_logging_client import log_levels
from redarch_logging_client.threading import ThreadedLogger


def sig(f):
    return str(inspect.signature(f))


LEVEL_METHOD = ("(message, *, user_id=None, tenant_id=None, request_id=None, context=None, "
                "client_log_datetime=None)")
FLAT = "(service, message, *, user_id=None, tenant_id=None, request_id=None, context=None"


def test_constants():
    for name in ("DEBUG", "INFO", "WARN", "ERROR", "FATAL"):
        assert getattr(rlc, "LOG_LEVEL_" + name) == name
        assert getattr(log_levels, "LOG_LEVEL_" + name) == name
    assert log_levels.LOG_LEVELS == ["DEBUG", "INFO", "WARN", "ERROR", "FATAL"]


def test_signatures(env, service):
    assert sig(rlc.get_logger) == "(service: str, logger_name: str = None)"
    assert sig(rlc.set_log_level) == ("(service: str, logger_name: str = None, "
                                      "level: str = 'DEBUG')")
    assert sig(rlc.log).startswith("(level, service, message, user_id=None, tenant_id=None, "
                                   "request_id=None, context=None")
    for f in (rlc.log_debug, rlc.log_info, rlc.log_warn, rlc.log_error, rlc.log_fatal):
        assert sig(f).startswith(FLAT)
    assert sig(rlc.Logger).startswith("(service, level=None, logger_name=None")
    assert sig(ThreadedLogger).startswith("(service, level='DEBUG', logger_name=None")
    lg = rlc.get_logger(service)
    for m in ("debug", "info", "warn", "error", "fatal"):
        assert sig(getattr(rlc.Logger, m)) == "(self, " + LEVEL_METHOD[1:]
        assert sig(getattr(lg, m)) == LEVEL_METHOD
    tl = ThreadedLogger(service=service + "-t")
    assert sig(tl.debug).startswith("(message=''")
    assert callable(tl.flush) and callable(tl.stop)
    tl.stop()


def test_missing_message_is_a_type_error(env, service):
    with pytest.raises(TypeError):
        rlc.get_logger(service).info()


def test_registry_and_levels(env, service):
    a = rlc.get_logger(service, "a")
    assert rlc.get_logger(service, "a") is a
    assert rlc.get_logger(service) is not a
    assert a.level == "DEBUG"
    rlc.set_log_level(service, "a", "warn")
    assert a.level == "WARN"
    with pytest.raises(ValueError):
        rlc.set_log_level(service, "a", "LOUD")
    a.info("dropped")
    a.warn("kept")
    a.debug("dropped")
    a.fatal("kept too")
    assert a.flush(10)
    es = env.wait_entries(service, 2)
    assert sorted(e["message"] for e in es) == ["kept", "kept too"]
    assert all(e["logger_name"] == "a" for e in es)


def test_default_level_from_environment(env, service, monkeypatch):
    monkeypatch.setenv("RARCH_LOGGING_DEFAULT_LEVEL", "ERROR")
    lg = rlc.get_logger(service)
    assert lg.level == "ERROR"
    lg.warn("no")
    lg.error("yes")
    rlc.log_warn(service, "flat no")
    rlc.log_error(service, "flat yes")
    rlc.log("FATAL", service, "flat fatal")
    assert lg.flush(10) and rlc._flat[service].flush(10)
    msgs = sorted(e["message"] for e in env.wait_entries(service, 3))
    assert msgs == ["flat fatal", "flat yes", "yes"]


def test_library_lookup_error_lists_paths(monkeypatch, tmp_path):
    from redarch_logging_client import _native
    monkeypatch.setenv("RARCH_LOGGING_LIB", str(tmp_path / "nope.so"))
    monkeypatch.setattr(_native, "_HERE", str(tmp_path / "a" / "b" / "c" / "pkg"))
    with pytest.raises(ImportError) as ei:
        _native.find_library()
    msg = str(ei.value)
    assert str(tmp_path / "nope.so") in msg
    assert "package copy" in msg and "repository build" in msg
    assert "RARCH_LOGGING_LIB" in msg


def test_installed_package_needs_no_environment(tmp_path):
    """From any directory, with no RARCH_* variable, the package loads its bundled library."""
    src = os.environ.get("RARCH_PYTHON_SOURCE")
    if src is None:
        pytest.skip("not run by run-tests.sh (the package may not be installed)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RARCH_")}
    code = ("import redarch_logging_client as r, os; print(r.library_path); "
            "print(os.path.dirname(r.__file__))")
    p = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    lib, pkg = p.stdout.split()
    source_pkg = os.path.join(os.path.abspath(src), "redarch_logging_client")
    assert pkg != source_pkg and "site-packages" in pkg, pkg
    # And this test process uses the installed package too.
    assert os.path.dirname(os.path.abspath(rlc.__file__)) != source_pkg
    assert lib == os.path.join(pkg, "_lib", "librarch_logging.so")


def test_a_bad_service_name_raises_with_its_own_status(env):
    from redarch_logging_client import _native
    with pytest.raises(rlc.RarchError) as e:
        _native.NativeLogger("../escape")
    assert e.value.status == _native.ERR_INVALID_ARGUMENT
    assert "buffer directory" in e.value.message
    with pytest.raises(rlc.RarchError) as e:
        _native.NativeLogger("svc", options={"queue_capacity": "lots"})
    assert e.value.status == _native.ERR_CONFIG


def test_the_otlp_options_are_accepted_and_a_bad_header_is_not_shown(env, tmp_path):
    from redarch_logging_client import _native
    nl = _native.NativeLogger("svc", options={
        "sink": "otlp", "url": "http://127.0.0.1:9/v1/logs", "headers": "x-tenant=acme",
        "compression": "gzip", "batch_max_entries": 64, "batch_max_bytes": 65536,
        "batch_linger_ms": 5, "buffer_dir": str(tmp_path), "close_timeout_ms": 0})
    nl.close()
    with pytest.raises(rlc.RarchError) as e:
        _native.NativeLogger("svc", options={"compression": "zstd"})
    assert e.value.status == _native.ERR_CONFIG and "compression" in e.value.message
    with pytest.raises(rlc.RarchError) as e:
        _native.NativeLogger("svc", options={"sink": "otlp", "headers": "no-equals-s3cr3t"})
    assert e.value.status == _native.ERR_CONFIG and "headers" in e.value.message
    assert "s3cr3t" not in e.value.message
