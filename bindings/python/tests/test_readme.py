"""The Python client's README examples, verbatim (readme_examples/), against the receiver."""

import os
import re

import pytest

from conftest import HERE, run_python, subprocess_env

EXAMPLES = os.path.join(HERE, "readme_examples")
SEED = "/work/shared/seed/000_ffc1254b6ab40d13.txt"


def test_examples_are_verbatim_copies_of_the_readme():
    if not os.path.isfile(SEED):
        pytest.skip("the Python client's README is not on this machine")
    with open(SEED, encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    for block, name in zip(blocks, ["simple_logger.py", "threaded_logger.py"]):
        with open(os.path.join(EXAMPLES, name), encoding="utf-8") as f:
            assert f.read() == block


def test_simple_logger_example(env, tmp_path):
    pytest.importorskip("dotenv")
    p = run_python(os.path.join(EXAMPLES, "simple_logger.py"), str(tmp_path), subprocess_env(env))
    assert p.returncode == 0, p.stderr
    assert "Sending test logs..." in p.stdout and "Done sending logs.." in p.stdout
    # The script exits without a flush: the exit hook delivers before the process ends.
    es = env.entries("test-service")
    assert len(es) == 5, es
    # Two connections deliver in parallel: the order of arrival is not the order of logging.
    assert sorted(e["level"] for e in es) == ["DEBUG", "ERROR", "FATAL", "INFO", "WARN"]
    for e in es:
        assert e["logger_name"] == "test_logger"
        assert e["user_id"] == "user_123" and e["tenant_id"] == "tenant_abc"
        assert e["request_id"] == "req_456"
        assert e["context"] == {"action": "test_logging",
                                "details": {"step": "demo", "test_case": "full_context"}}
    assert {e["level"]: e["message"] for e in es}["INFO"] == "This is a test log message."
    assert env.stats()["unauthorized"] == 0


def test_threaded_logger_example(env, tmp_path):
    pytest.importorskip("dotenv")
    p = run_python(os.path.join(EXAMPLES, "threaded_logger.py"), str(tmp_path),
                   subprocess_env(env))
    assert p.returncode == 0, p.stderr
    es = env.entries("test-reselient-logger")
    assert len(es) == 1, es
    e = es[0]
    assert e["level"] == "DEBUG" and e["logger_name"] == "test_logger" and e["message"] == ""
    assert e["user_id"] is None and e["tenant_id"] is None and e["context"] == {}
